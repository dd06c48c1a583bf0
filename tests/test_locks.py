"""locks.py: the one file lock; a refused locker names the holder; waits are bounded."""

from __future__ import annotations

import os
import time

from charrnn_cli.runs import locks


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
