"""The one exclusive file lock of charrnn: a run's `.lock` and a corpus's `<name>.lock`.

`file_lock(path)` opens the lock file (creating it), takes an exclusive `flock` at once or
within `wait` seconds (on the file still at the path: one removed by its holder meanwhile is
opened again, so `fetch --gc` may free a lock file while it holds it), and stamps it "pid N"
so a refused process can name the holder; on leaving, the stamp is cleared (no stale pid for
the next message) and the lock released. Where `flock` does not exist (Windows) every lock
counts as held: unique temp files and `os.replace` keep the files whole anyway.
Standard library and `charrnn_cli.storage.paths` only.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from charrnn_cli.storage import paths

POLL_S = 0.05  # between tries while waiting for a lock


@dataclass
class Lock:
    """An opened lock file; `held` says whether this process holds it (`fh` None: the file
    could not be opened and the lock is taken best-effort, that is not at all)."""

    fh: IO[str] | None
    held: bool = False

    def holder(self, patience: float = 1.0) -> str:
        """Who holds the lock: "pid N" as the holder stamped it, or "another process". Waits up
        to `patience` seconds for a holder that has the lock but has not stamped it yet."""
        deadline = time.monotonic() + patience
        while self.fh is not None:
            self.fh.seek(0)
            text = self.fh.read().strip()
            match = re.fullmatch(r"pid (\d+)", text)
            if match and paths.pid_alive(int(match.group(1))):
                return text
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL_S / 2)
        return "another process"


@contextlib.contextmanager
def file_lock(path: Path, *, wait: float = 0.0, best_effort: bool = False) -> Iterator[Lock]:
    """Open `path` and try to lock it exclusively for up to `wait` seconds; yield the `Lock`,
    held or not (the caller decides: refuse, or go on without it). A lock file that cannot
    be created is a `WriteError`, or with `best_effort` a lock not held."""
    lock = Lock(_open(path, best_effort))
    try:
        while lock.fh is not None:
            lock.held = _acquire(lock.fh, wait, best_effort)
            if not lock.held or _still_there(lock.fh, path):
                break
            # removed by its holder (`fetch --gc` frees a lock file it holds) after this process
            # opened it: a lock on that file guards nothing, so lock the one at the path now
            _release(lock.fh)
            lock.fh.close()
            lock.fh, lock.held = _open(path, best_effort), False
        if lock.held and lock.fh is not None:
            with contextlib.suppress(OSError):  # without the stamp a refusal says less, that is all
                _stamp(lock.fh, f"pid {os.getpid()}")
        yield lock
    finally:
        if lock.fh is not None:
            if lock.held:
                _release(lock.fh)
            lock.fh.close()


def _open(path: Path, best_effort: bool) -> IO[str] | None:
    try:
        return open(path, "a+", encoding="utf-8")
    except OSError as exc:
        if best_effort:
            return None
        if paths.is_storage_error(exc):
            raise paths.write_error(path, exc) from None
        raise


def _acquire(fh: IO[str], wait: float, best_effort: bool) -> bool:
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory locks
        return True
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
        except OSError:  # no locks on this file system (NFS without lockd, ...)
            if best_effort:
                return False
            raise
        time.sleep(POLL_S)


def _still_there(fh: IO[str], path: Path) -> bool:
    """Whether the open lock file is still the file at `path` (not removed or replaced)."""
    try:
        mine, there = os.fstat(fh.fileno()), os.stat(path)
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)


def _stamp(fh: IO[str], text: str) -> None:
    # "a+" writes at the end, which is the start once truncated
    fh.seek(0)
    fh.truncate()
    fh.write(text)
    fh.flush()


def _release(fh: IO[str]) -> None:
    with contextlib.suppress(OSError):
        _stamp(fh, "")
    with contextlib.suppress(ImportError, OSError):
        import fcntl

        # explicit, so a forked child that inherited the descriptor does not keep it locked
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
