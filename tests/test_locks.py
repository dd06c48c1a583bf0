"""locks.py: the one file lock; a refused locker names the holder; waits are bounded."""

from __future__ import annotations

import errno
import fcntl
import os
import sys
import threading
import time

import pytest

from charrnn_cli.errors import WriteError
from charrnn_cli.storage import locks


def test_a_second_locker_is_refused_and_told_the_holders_pid(tmp_path):
    path = tmp_path / "x.lock"
    with locks.file_lock(path) as first:
        assert first.held and path.read_text() == f"pid {os.getpid()}"
        with locks.file_lock(path) as second:
            assert not second.held and second.holder() == f"pid {os.getpid()}"
    assert path.read_text() == ""  # no stale pid for the next refusal
    with locks.file_lock(path) as again:
        assert again.held


def test_the_wait_is_bounded_and_a_stale_stamp_is_not_named(tmp_path):
    path = tmp_path / "x.lock"
    with locks.file_lock(path) as first:
        start = time.monotonic()
        with locks.file_lock(path, wait=0.2) as waiter:
            assert not waiter.held and 0.15 < time.monotonic() - start < 2
        first.fh.seek(0)
        first.fh.truncate()
        first.fh.write("pid 999999999")  # a holder that is not alive
        first.fh.flush()
        with locks.file_lock(path) as other:
            assert other.holder(patience=0.1) == "another process"


def test_best_effort_goes_on_without_a_lock_file(tmp_path):
    with locks.file_lock(tmp_path / "missing" / "x.lock", best_effort=True) as lock:
        assert not lock.held and lock.fh is None and lock.holder() == "another process"


def test_a_lock_file_that_cannot_be_made_is_one_line_naming_it(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the lock's folder should be")
    path = blocker / "x.lock"
    with pytest.raises(WriteError) as refused, locks.file_lock(path):
        pass
    assert str(refused.value).startswith(f"cannot write {path}: not a folder")
    assert refused.value.errno == errno.ENOTDIR
    with locks.file_lock(path, best_effort=True) as lock:  # best effort: go on, unlocked
        assert not lock.held and lock.fh is None


def test_an_error_other_than_storage_is_not_dressed_up(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(locks, "open", refuse, raising=False)
    with pytest.raises(OSError) as raised, locks.file_lock(tmp_path / "x.lock"):
        pass
    assert type(raised.value) is OSError and raised.value.errno == errno.EIO


class _Flock:
    """A stand-in for fcntl whose flock fails as told: for lock (`on_lock`) or unlock."""

    LOCK_EX, LOCK_NB, LOCK_UN = fcntl.LOCK_EX, fcntl.LOCK_NB, fcntl.LOCK_UN

    def __init__(self, on_lock: OSError | None = None, on_unlock: OSError | None = None):
        self.on_lock, self.on_unlock, self.calls = on_lock, on_unlock, []

    def flock(self, fd: int, how: int) -> None:
        self.calls.append(how)
        failure = self.on_unlock if how == fcntl.LOCK_UN else self.on_lock
        if failure is not None:
            raise failure
        fcntl.flock(fd, how)


def test_a_file_system_without_locks_is_an_error_unless_best_effort(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "fcntl", _Flock(on_lock=OSError(errno.ENOLCK, "no locks")))
    with locks.file_lock(tmp_path / "x.lock", best_effort=True) as lock:
        assert lock.fh is not None and not lock.held
    with pytest.raises(OSError, match="no locks"), locks.file_lock(tmp_path / "x.lock"):
        pass


def test_a_failing_unlock_or_stamp_still_ends_the_lock_quietly(tmp_path, monkeypatch):
    fake = _Flock(on_unlock=OSError(errno.EBADF, "bad file"))
    monkeypatch.setitem(sys.modules, "fcntl", fake)
    with locks.file_lock(tmp_path / "x.lock") as lock:
        assert lock.held
    assert fake.calls[-1] == fcntl.LOCK_UN  # tried, and its failure kept quiet

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "no space")

    monkeypatch.setattr(locks, "_stamp", full)
    with locks.file_lock(tmp_path / "y.lock") as lock:
        assert lock.held  # a lock without its stamp is still a lock


def test_without_flock_every_lock_counts_as_held(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "fcntl", None)  # `import fcntl` fails, as on Windows
    path = tmp_path / "x.lock"
    with locks.file_lock(path) as lock, locks.file_lock(path) as other:
        assert lock.held and other.held and path.read_text() == f"pid {os.getpid()}"


def test_a_lock_file_gone_from_its_path_is_not_still_there(tmp_path):
    path = tmp_path / "x.lock"
    with open(path, "a+") as fh:
        assert locks._still_there(fh, path)
        path.unlink()
        assert not locks._still_there(fh, path)
        path.write_text("")  # another file at the path now
        assert not locks._still_there(fh, path)


def test_the_holder_is_waited_for_while_it_has_not_stamped_yet(tmp_path):
    path = tmp_path / "x.lock"
    with locks.file_lock(path) as first:
        first.fh.seek(0)
        first.fh.truncate()  # locked, not stamped yet: a holder between flock and its stamp
        first.fh.flush()
        stamp = threading.Timer(0.2, lambda: path.write_text(f"pid {os.getpid()}"))
        stamp.start()
        with locks.file_lock(path) as other:
            assert other.holder(patience=5.0) == f"pid {os.getpid()}"
        stamp.join()
