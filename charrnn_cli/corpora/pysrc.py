"""The `pysrc` corpus: this Python's standard-library sources, built offline into the cache.

Every UTF-8 `.py` file under the stdlib folder (not site-packages), in a fixed sorted order,
each after a `# ==== rel/path.py ====` line, capped at `max_bytes` (4,000,000 by default). The
same Python and cap give the same bytes, so a run trained on it finds the same text later.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

from charrnn_cli.corpora import cache, download
from charrnn_cli.corpora.download import Progress
from charrnn_cli.corpora.registry import PYSRC, CorpusFile, check_name
from charrnn_cli.errors import UsageError

PYSRC_MAX_BYTES = 4_000_000
EXCLUDED_DIRS = frozenset({"site-packages", "dist-packages", "__pycache__"})


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _stdlib_files(root: Path) -> Iterator[tuple[str, Path]]:
    """(relative posix path, path) of the `.py` files under `root`, in a fixed sorted order."""
    for folder, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDED_DIRS)
        for filename in sorted(f for f in filenames if f.endswith(".py")):
            path = Path(folder) / filename
            yield path.relative_to(root).as_posix(), path


def pysrc_chunks(max_bytes: int = PYSRC_MAX_BYTES, root: Path | None = None) -> Iterator[bytes]:
    """The pysrc corpus in pieces: each UTF-8 stdlib file after a `# ==== rel.py ====` line,
    up to `max_bytes` in all; the file that crosses the cap is cut there, on a character
    boundary (so the corpus ends at a file boundary or within 3 bytes of the cap)."""
    budget = max_bytes
    for rel, path in _stdlib_files(root or stdlib_dir()):
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if "\x00" in text:
            continue
        if not text.endswith("\n"):
            text += "\n"
        piece = f"# ==== {rel} ====\n{text}".encode()
        if len(piece) < budget:
            yield piece
            budget -= len(piece)
            continue
        # the cap: cut here, dropping a character split by it
        yield piece[:budget].decode("utf-8", errors="ignore").encode("utf-8")
        return


def build_pysrc(
    name: str = PYSRC,
    max_bytes: int | None = None,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> CorpusFile:
    """Build the pysrc corpus from this Python's standard library (no network), capped at
    `max_bytes` (default 4,000,000). A cached one is reused unless `force` or a different
    `max_bytes` is asked for, so a run trained on it finds the same text later."""
    check_name(name)
    if max_bytes is not None and max_bytes < 1:
        raise UsageError("--max-bytes must be at least 1")
    meta = cache.read_meta(name) or {}
    same = max_bytes is None or meta.get("max_bytes") == max_bytes
    if not force and same and (hit := cache.valid_cached(name, source=PYSRC)) is not None:
        return hit
    max_bytes = PYSRC_MAX_BYTES if max_bytes is None else max_bytes
    root = stdlib_dir()
    version = ".".join(map(str, sys.version_info[:3]))
    if not root.is_dir():
        raise UsageError(
            f"no standard-library sources at {root}: import a text instead with "
            "`charrnn fetch --from FILE --name NAME`, then `charrnn train --corpus NAME`"
        )
    cache.prepare()
    with cache.lock(name, download.DEFAULTS.lock_wait):
        chunks = pysrc_chunks(max_bytes, root)
        final, sha, size = cache.store(chunks, PYSRC, name, progress, max_bytes)
        cache.write_meta(
            name, PYSRC, sha, size, max_bytes=max_bytes, python=version, root=str(root)
        )
    return CorpusFile(name, final, sha, size, PYSRC)
