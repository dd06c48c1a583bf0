"""What `--corpus` means: a spec resolved to a `CorpusFile`, and a run's corpus found again.

`resolve(spec)` takes a registry or cached name (fetched if need be), an http(s) URL, a file
path (used in place) or `-` (stdin, imported under its hash). `stored(record)` finds the corpus
a run was trained on from the record in its config.json, and refuses text that has changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from charrnn_cli.corpora import cache, registry
from charrnn_cli.corpora.fetching import fetch
from charrnn_cli.corpora.importing import check_local, import_stdin
from charrnn_cli.corpora.registry import REGISTRY, CorpusFile
from charrnn_cli.download import Progress
from charrnn_cli.errors import CharrnnError, UsageError


def resolve(spec: str, *, progress: Progress | None = None) -> CorpusFile:
    """`NAME` (a registry name or a cached name; a registry corpus that is not cached yet is
    fetched, honouring CHARRNN_MIRROR/CHARRNN_OFFLINE), an existing file `PATH` (used in place,
    sha256 computed, not copied), or `-` (stdin read fully, imported into the cache as
    `stdin-<first 12 hex of sha256>` so a later resume finds it)."""
    if spec == "-":
        return import_stdin()
    if registry.is_url(spec):
        return fetch(spec, progress=progress)
    if registry.looks_like_name(spec) and (spec in REGISTRY or cache.read_meta(spec) is not None):
        return fetch(spec, progress=progress)
    path = Path(spec).expanduser()
    if path.is_file():
        return check_local(path)
    if path.exists():
        raise UsageError(f"{spec} is not a file")
    raise UsageError(
        f"no corpus or file named {spec!r}: known corpora are {', '.join(REGISTRY)} "
        "(see `charrnn fetch --list`)"
    )


def stored(record: dict[str, Any]) -> CorpusFile:
    """A run's corpus from its config.json record (name, path, sha256, source): the file at its
    stored path when its sha256 is unchanged, else the corpus resolved again by name; a
    CharrnnError when that text differs (a run cannot go on on other text)."""
    path = Path(record.get("path", ""))
    if path.is_file() and cache.sha256_file(path) == record.get("sha256"):
        size = path.stat().st_size
        return CorpusFile(record["name"], path, record["sha256"], size, record.get("source", ""))
    found = resolve(record.get("name", ""))
    if found.sha256 != record.get("sha256"):
        raise CharrnnError(
            f"the run's corpus {record.get('name')!r} changed since training (sha256 differs): "
            "it cannot be resumed on other text; start a new --run"
        )
    return found
