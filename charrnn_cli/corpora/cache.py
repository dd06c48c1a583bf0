"""The corpus cache on disk: `<name>.txt` beside its `<name>.json`, and how text gets in.

A cached corpus is its text file plus metadata (name, source, sha256, size, fetched_at and what
its source adds). A cached corpus counts only when its file still matches its metadata
(`valid_cached`). New text enters through `store`, which checks it is UTF-8 text while writing
it (`text.TextSink`) through `paths.atomic_file`, so the cache never holds a partial or
unchecked file; fetches of one corpus by several processes take `lock(name)` first.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from charrnn_cli import locks, paths
from charrnn_cli.corpora.registry import CorpusFile
from charrnn_cli.download import Progress
from charrnn_cli.text import TextSink

READ_CHUNK = 1 << 16  # bytes read at a time from a file or stdin being imported


def text_path(name: str) -> Path:
    return paths.cache_dir() / f"{name}.txt"


def meta_path(name: str) -> Path:
    return paths.cache_dir() / f"{name}.json"


def read_meta(name: str) -> dict[str, Any] | None:
    """The metadata of a cached corpus, or None if there is none (or it is unreadable)."""
    try:
        meta = json.loads(meta_path(name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def write_meta(name: str, source: str, sha256: str, size: int, **extra: Any) -> None:
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    meta = {"name": name, "source": source, "sha256": sha256, "size": size, "fetched_at": now}
    meta.update(extra)
    paths.atomic_write_text(meta_path(name), json.dumps(meta, indent=2) + "\n")


def sha256_file(path: Path) -> str:
    """The sha256 (hex) of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def valid_cached(
    name: str, sha256: str | None = None, source: str | None = None
) -> CorpusFile | None:
    """The cached corpus if its text file matches its metadata (and `sha256`, or else
    `source` when given); None otherwise."""
    meta = read_meta(name)
    path = text_path(name)
    if meta is None or not path.is_file() or not isinstance(meta.get("sha256"), str):
        return None
    if sha256 is not None and meta["sha256"] != sha256:
        return None
    if sha256 is None and source is not None and meta.get("source") != source:
        return None
    try:
        if path.stat().st_size != meta.get("size") or sha256_file(path) != meta["sha256"]:
            return None
    except OSError:
        return None
    return CorpusFile(name, path, meta["sha256"], int(meta["size"]), meta["source"])


@contextlib.contextmanager
def lock(name: str, wait: float) -> Iterator[bool]:
    """Best-effort exclusive lock on `<name>.lock`, so one process downloads or builds a corpus
    and the others find it cached; after `wait` seconds go on without it (unique temps and the
    atomic move keep the cache whole anyway). Yields whether it is held."""
    with locks.file_lock(paths.cache_dir() / f"{name}.lock", wait=wait, best_effort=True) as held:
        yield held.held


def prepare() -> Path:
    """The cache folder, made if missing, with the temps of dead processes swept."""
    folder = paths.cache_dir()
    with paths.storage_errors(folder):
        folder.mkdir(parents=True, exist_ok=True)
    paths.sweep_stale_temps(folder)
    return folder


def store(
    chunks: Iterable[bytes],
    label: str,
    final: Path | Callable[[str], Path],
    progress: Progress | None = None,
    total: int | None = None,
) -> tuple[Path, str, int]:
    """Write text chunks, checked as they come, into the cache as `final` (or, once the text's
    sha256 is known, as `final(sha256)`); return (path, sha256, size)."""
    folder = prepare()
    named = final if isinstance(final, Path) else folder / "stdin.txt"
    with paths.atomic_file(named) as pending:
        sink = TextSink(pending.fh, label, named)
        for chunk in chunks:
            sink.write(chunk)
            if progress is not None:
                progress(sink.size, total)
        sha, size = sink.finish()
        if not isinstance(final, Path):
            pending.final = final(sha)
    return pending.final, sha, size


def read_chunks(fh: IO[bytes]) -> Iterator[bytes]:
    while chunk := fh.read(READ_CHUNK):
        yield chunk
