"""`charrnn fetch --gc`: free the texts that no name and no run refers to.

A text is kept while a name points at it (`<name>.json`) or a run was trained on it (the
sha256 in the run's `config.json`). Both kinds of file are searched for sha256s as text, not
parsed, so a file damaged by hand still protects the texts it names. A text written in the last
`GRACE_S` seconds is kept too: a fetch or a trainer may be about to write the file that refers
to it. The encoded ids of a freed text (`encoded/<sha256>.*`) go with it.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from charrnn_cli.corpora import cache
from charrnn_cli.storage import locks, paths

GRACE_S = 600.0
HEX64 = re.compile(rb"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")
CONFIG = "config.json"  # store.CONFIG; store is not imported here to keep fetch light
READ_MAX = 64 << 20  # bytes of a file searched for sha256s (config.json holds the vocabulary)


@dataclass
class Collected:
    """What `collect` found: the texts it freed (or would free) and what it kept."""

    freed: list[Path] = field(default_factory=list)
    freed_bytes: int = 0
    named: int = 0  # texts kept because a name points at them
    for_runs: int = 0  # texts kept only because a run was trained on them
    recent: int = 0  # unreferenced texts kept because they were just written


def _shas_in(files: list[Path]) -> set[str]:
    found: set[str] = set()
    for path in files:
        with contextlib.suppress(OSError):
            with open(path, "rb") as fh:
                found.update(m.decode() for m in HEX64.findall(fh.read(READ_MAX)))
    return found


def referenced() -> tuple[set[str], set[str]]:
    """The sha256s that names point at, and those that runs were trained on."""
    folder = paths.cache_dir()
    names = sorted(folder.glob("*.json")) if folder.is_dir() else []
    runs_dir = paths.data_dir()
    configs = sorted(runs_dir.glob(f"*/{CONFIG}")) if runs_dir.is_dir() else []
    return _shas_in(names), _shas_in(configs)


def collect(*, dry_run: bool = False, grace_s: float = GRACE_S) -> Collected:
    """Free (unless `dry_run`) every stored text no name and no run refers to."""
    result = Collected()
    if not dry_run:
        for root in (paths.cache_dir(), paths.data_dir()):  # temps of dead processes, anywhere
            paths.sweep_tree(root)
    if not dry_run and cache.blob_dir().is_dir():
        cache.migrate()
    named, for_runs = referenced()
    now, recent = time.time(), set[str]()
    blobs = sorted(cache.blob_dir().glob("*.txt")) if cache.blob_dir().is_dir() else []
    for blob in blobs:
        sha = blob.stem
        if not cache.SHA_RE.fullmatch(sha):
            continue  # not a blob (a temp file was swept above)
        if sha in named:
            result.named += 1
            continue
        if sha in for_runs:
            result.for_runs += 1
            continue
        try:
            stat = blob.stat()
        except FileNotFoundError:
            continue
        if now - stat.st_mtime < grace_s:
            result.recent += 1
            recent.add(sha)
            continue
        if not dry_run:
            with paths.storage_errors(blob):
                blob.unlink(missing_ok=True)
        result.freed.append(blob)
        result.freed_bytes += stat.st_size
    if not dry_run:
        freed = {blob.stem for blob in result.freed}
        _free_encoded(named | for_runs | recent, freed, grace_s)
    return result


def _free_encoded(keep: set[str], freed: set[str], grace_s: float) -> None:
    """The encoded ids of texts no longer referred to (they can always be made again), each
    text's entries (`encoded/<sha256>.*`) as one group. Freeing agrees with the writers through
    their one lock: a group is left alone while any of its `.lock` files is held by another
    process (an encoding, ids being moved) or, unless its text was just `freed`, while any of
    its files is recent (a trainer on a plain file, whose text is not stored, encodes it, then
    writes the config.json that refers to it); otherwise its locks
    are taken, its files removed, and the lock files last, still held (locks.file_lock checks
    that the file it locked is still the one at the path)."""
    folder = paths.cache_dir() / "encoded"
    if not folder.is_dir():
        return
    groups: dict[str, list[Path]] = {}
    for path in folder.iterdir():
        sha = path.name.split(".", 1)[0]
        if cache.SHA_RE.fullmatch(sha) and sha not in keep:
            groups.setdefault(sha, []).append(path)
    now = time.time()
    for sha, files in groups.items():
        with contextlib.suppress(OSError):
            if sha not in freed and any(now - p.stat().st_mtime < grace_s for p in files):
                continue
        _free_group(sorted(files, key=lambda p: p.suffix == ".lock"))


def _free_group(files: list[Path]) -> None:
    """Remove one text's entries (lock files last) if every one of its locks can be taken."""
    with contextlib.ExitStack() as stack:
        for path in files:
            if path.suffix == ".lock":
                held = stack.enter_context(locks.file_lock(path, best_effort=True))
                if not held.held:
                    return  # a writer is at work on this text
        for path in files:
            with contextlib.suppress(OSError):
                path.unlink()
