"""Text the user already has: a local file or stdin, imported into the cache or used in place.

`import_file` copies a file (or stdin for "-") into the cache under a name the user chose (a
name that held other text now points at this one; the other text stays for the runs trained on
it; a registry name takes only a copy of its own text); `import_stdin` caches stdin under
`stdin-<first 12 hex of its sha256>`, a name known only once all of it is read, so a later
resume finds it; `import_text` caches text held in memory (`text-<hash>`); `check_local`
hashes and checks a file used in place (not copied). All of them
refuse what is not UTF-8 text (`text.TextSink`).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import IO

from charrnn_cli.corpora import cache
from charrnn_cli.corpora.registry import REGISTRY, CorpusFile, check_name
from charrnn_cli.errors import UsageError
from charrnn_cli.storage import paths
from charrnn_cli.text import TextSink


def _stdin_bytes() -> IO[bytes]:
    stdin = sys.stdin
    if stdin is None:
        raise UsageError("no stdin to read the corpus from")
    with contextlib.suppress(AttributeError, ValueError, OSError):
        if stdin.isatty():
            raise UsageError(
                "'-' reads the corpus from stdin, but stdin is a terminal: pipe a file in"
            )
    buffer = getattr(stdin, "buffer", None)
    if buffer is None:
        import io

        return io.BytesIO(stdin.read().encode("utf-8"))
    return buffer


def import_file(src: str | Path, name: str) -> CorpusFile:
    """Copy a local text file (or stdin for "-") into the cache as `name`."""
    check_name(name)
    if str(src) == "-":
        chunks = cache.read_chunks(_stdin_bytes())
        final, sha, size = cache.store(chunks, "stdin", name)
        source = "stdin"
    else:
        path = paths.user_path(src)
        if path.is_dir():
            raise UsageError(f"{src} is a folder, not a text file")
        if not path.exists():
            raise UsageError(f"no such file: {src}")
        source = f"file:{path.resolve()}"
        with open(path, "rb") as fh:  # a pipe or a device streams as well as a file
            final, sha, size = cache.store(cache.read_chunks(fh), str(src), name)
    _check_registry_copy(name, sha)
    cache.write_meta(name, source, sha, size)
    return CorpusFile(name, final, sha, size, source)


def _check_registry_copy(name: str, sha: str) -> None:
    """A registry name is pinned to its text: a copy of that text may be imported under it
    (for a machine with no network), other text may not, or `fetch` and `train` would go on
    asking for the registry's (the stored text stays unnamed, for `--gc`)."""
    entry = REGISTRY.get(name)
    if entry is not None and entry.sha256 is not None and sha != entry.sha256:
        raise UsageError(
            f"{name} is the registry's corpus, sha256 {entry.sha256[:12]}..., and this text is "
            f"another ({sha[:12]}...): import it under another --name, then train on it with "
            "`charrnn train --corpus NAME`"
        )


def import_stdin() -> CorpusFile:
    """Read stdin fully into the cache as `stdin-<first 12 hex of its sha256>`."""
    chunks = cache.read_chunks(_stdin_bytes())
    final, sha, size = cache.store(chunks, "stdin", "stdin")
    name = f"stdin-{sha[:12]}"
    cache.write_meta(name, "stdin", sha, size)
    return CorpusFile(name, final, sha, size, "stdin")


def import_text(text: str) -> CorpusFile:
    """Text held in memory (the Python API's corpus) into the cache as `text-<first 12 hex of
    its sha256>`: a name known once it is hashed, so a resumed run finds it again."""
    data = text.encode("utf-8", "surrogatepass")  # a lone surrogate: refused as not UTF-8
    final, sha, size = cache.store(iter([data]), "the text", "text")
    name = f"text-{sha[:12]}"
    cache.write_meta(name, "python", sha, size)
    return CorpusFile(name, final, sha, size, "python")


def check_local(path: Path) -> CorpusFile:
    """A file used in place: hashed and checked to be UTF-8 text, not copied."""
    with open(path, "rb") as fh:
        sink = TextSink(None, str(path))
        for chunk in cache.read_chunks(fh):
            sink.write(chunk)
        sha, size = sink.finish()
    full = path.resolve()
    return CorpusFile(path.stem, full, sha, size, f"file:{full}")
