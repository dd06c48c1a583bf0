"""What `--corpus` means: a spec resolved to a `CorpusFile`, and a run's corpus found again.

`resolve(spec)` takes a registry or cached name (fetched if need be), an http(s) URL, a file
path (used in place) or `-` (stdin, imported under its hash). `stored(record)` finds the corpus
a run was trained on from the record in its config.json by its sha256, wherever its name now
points, and refuses text that has changed.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from charrnn_cli.corpora import cache, registry
from charrnn_cli.corpora.download import Progress
from charrnn_cli.corpora.fetching import fetch
from charrnn_cli.corpora.importing import check_local, import_stdin
from charrnn_cli.corpora.registry import REGISTRY, CorpusFile
from charrnn_cli.errors import CharrnnError, CorruptFileError, UsageError
from charrnn_cli.storage import paths


def resolve(spec: str, *, progress: Progress | None = None) -> CorpusFile:
    """`NAME` (a registry name or a cached name; a registry corpus that is not cached yet is
    fetched, honouring CHARRNN_MIRROR/CHARRNN_OFFLINE), an existing file `PATH` (used in place,
    sha256 computed, not copied), or `-` (stdin read fully, imported into the cache as
    `stdin-<first 12 hex of sha256>` so a later resume finds it)."""
    if spec == "-":
        return import_stdin()
    if registry.is_url(spec):
        return fetch(spec, progress=progress)
    if registry.looks_like_name(spec) and (spec in REGISTRY or cache.meta_path(spec).exists()):
        return fetch(spec, progress=progress)
    path = paths.user_path(spec)
    if path.is_file():
        return check_local(path)
    if path.exists():
        raise UsageError(f"{spec} is not a file")
    raise UsageError(
        f"no corpus or file named {spec!r}: known corpora are {', '.join(REGISTRY)} "
        "(see `charrnn fetch --list`)"
    )


def stored(record: Any) -> CorpusFile:
    """A run's corpus from its config.json record (name, path, sha256, source), found by its
    sha256: the stored text with that hash (whatever its name points at now), else the file at
    the recorded path while it still hashes the same (a file trained on in place), else the
    name resolved again when it still holds that text (a registry corpus fetched anew). A
    CharrnnError when the text is gone (a run cannot go on on other text); every field of the
    record is checked, since config.json may have been edited by hand."""
    if not isinstance(record, dict):
        raise CorruptFileError("the run's corpus record in config.json is not a JSON object")
    name, path, sha, source = (record.get(k) for k in ("name", "path", "sha256", "source"))
    if not isinstance(sha, str) or not cache.SHA_RE.fullmatch(sha):
        raise CorruptFileError("the run's corpus record in config.json has no valid sha256")
    name = name if isinstance(name, str) else ""
    source = source if isinstance(source, str) else ""
    blob = cache.find_blob(sha)
    if blob is None:
        cache.migrate()  # a cache from before content addressing: its texts move to blobs
        blob = cache.find_blob(sha)
    if blob is not None:
        return CorpusFile(name, blob, sha, blob.stat().st_size, source)
    if isinstance(path, str) and path and Path(path).is_file():
        with contextlib.suppress(OSError):
            if cache.sha256_file(Path(path)) == sha:
                return CorpusFile(name, Path(path), sha, Path(path).stat().st_size, source)
    known = registry.looks_like_name(name) and (
        name in REGISTRY or cache.read_meta(name) is not None
    )
    found = resolve(name) if known else None  # a registry corpus is fetched again
    if found is None or found.sha256 != sha:
        now = "now holds other text" if known else "is not cached either"
        raise CharrnnError(
            f"the text the run was trained on ({name or 'a corpus'}, sha256 {sha[:12]}...) is no "
            f"longer cached and its name {now}: import that text again "
            f"(`charrnn fetch --from FILE --name {name or 'NAME'}`) or start a new --run"
        )
    return found
