"""Every signal that would end training is answered like Ctrl-C: finish the step, save, exit
128 + the signal's number; a closed terminal (SIGHUP, then writes that fail) included."""

from __future__ import annotations

import os
import select
import signal
import sys
import time
from pathlib import Path

import pytest

from charrnn_cli import checkpoint, errors
from charrnn_cli.interrupts import Stopper
from tests.helpers import TINY, spawn, wait_for_metrics


@pytest.mark.parametrize("signum", errors.stop_signals(), ids=errors.signal_name)
def test_every_signal_that_would_end_the_process_asks_to_stop_and_names_its_code(signum):
    # pytest-timeout holds SIGALRM: give every signal its default action, as in a fresh process
    held = signal.signal(signum, signal.SIG_DFL)
    try:
        _stop_and_restore(signum)
    finally:
        signal.signal(signum, held)


def _stop_and_restore(signum: int) -> None:
    with Stopper() as stopper:
        assert stopper.reason() is None
        os.kill(os.getpid(), signum)
        time.sleep(0.01)  # the handler runs between bytecodes
        assert stopper.reason() == errors.signal_name(signum)
        assert stopper.exit_code(stopper.reason()) == 128 + signum
        assert stopper.exit_code("done") is None  # a run that finished anyway exits 0
    assert signal.getsignal(signum) == signal.SIG_DFL  # the old handler is back


def test_a_second_ctrl_c_or_quit_interrupts_at_once_other_signals_do_not():
    with Stopper() as stopper:
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)  # a second, other signal: still saving
        time.sleep(0.01)
        assert stopper.reason() == "SIGUSR1"
        for quit_now in (signal.SIGINT, signal.SIGQUIT):
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), quit_now)
                time.sleep(0.01)


def test_a_signal_ignored_when_training_starts_stays_ignored():
    old = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # what `nohup` does
    try:
        assert signal.SIGHUP not in errors.stop_signals()
        assert signal.SIGINT in errors.stop_signals()  # ignored in background jobs: still ours
        with Stopper():
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, old)


@pytest.mark.parametrize(
    "signum",
    [signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGALRM],
    ids=errors.signal_name,
)
def test_a_signal_during_training_saves_and_exits_128_plus_its_number(
    tiny_corpus, charrnn_home, cli, signum
):
    proc = spawn("train", "--corpus", str(tiny_corpus), "--run", "s", *TINY, "--epochs", "100000")
    run = charrnn_home / "runs" / "s"
    wait_for_metrics(run / "metrics.jsonl", lambda: proc.poll() is None)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err and "--resume" in err and errors.signal_name(signum) in err
    saved = checkpoint.load(run / "last.pt")
    assert not (run / ".lock").read_text().strip()  # the lock is released, not left behind
    r = cli("train", "--run", "s", "--resume", "--max-steps", str(saved["step"] + 5))
    assert r.code == 0, r.err


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_a_closed_terminal_saves_the_run_and_exits_129(tiny_corpus, charrnn_home, cli):
    """The trainer's controlling terminal goes away (an SSH session dropped): the kernel sends
    SIGHUP and every later write to the terminal fails; the run is still saved."""
    import pty

    run = charrnn_home / "runs" / "t"
    args = ["train", "--corpus", str(tiny_corpus), "--run", "t", *TINY, "--epochs", "100000"]
    pid, master = pty.fork()
    if pid == 0:  # the child: a session leader whose controlling terminal is the pty
        os.execve(sys.executable, [sys.executable, "-m", "charrnn_cli", *args], dict(os.environ))

    def drain() -> None:  # the live progress bar fills the pty unless it is read
        while select.select([master], [], [], 0)[0]:
            try:
                if not os.read(master, 65536):
                    return
            except OSError:
                return

    def alive() -> bool:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)

    wait_for_metrics(run / "metrics.jsonl", alive, drain=drain)
    time.sleep(0.5)
    os.close(master)  # the terminal hangs up
    deadline = time.monotonic() + 60
    while (status := os.waitpid(pid, os.WNOHANG)) == (0, 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(status[1]) == 129
    saved = checkpoint.load(run / "last.pt")
    r = cli("train", "--run", "t", "--resume", "--max-steps", str(saved["step"] + 5))
    assert r.code == 0, r.err


def test_nohup_keeps_training_through_a_hang_up(tiny_corpus, charrnn_home):
    proc = spawn(
        "train", "--corpus", str(tiny_corpus), "--run", "n", *TINY, "--epochs", "100000",
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    )  # fmt: skip
    run = charrnn_home / "runs" / "n"
    wait_for_metrics(run / "metrics.jsonl", lambda: proc.poll() is None)
    proc.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    assert proc.poll() is None  # ignored, as nohup asked
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "SIGHUP" not in err, err


def test_a_reader_of_the_progress_that_leaves_stops_training_as_sigpipe_would(
    tiny_corpus, charrnn_home
):
    """`charrnn train 2>&1 | head -2`: Python ignores SIGPIPE, so the next progress line fails
    with EPIPE; the run stops after its step and saves (exit 141), never ends unsaved."""
    proc = spawn("train", "--corpus", str(tiny_corpus), "--run", "p", *TINY, "--epochs", "100000",
                 "--eval-every", "2")  # fmt: skip
    assert "training on" in proc.stderr.readline()
    proc.stderr.close()  # the reader leaves
    proc.wait(timeout=60)
    assert proc.returncode == 128 + signal.SIGPIPE
    assert checkpoint.load(charrnn_home / "runs" / "p" / "last.pt")["step"] >= 1


def _wait_until_caught(pid: int, signum: int, timeout: float = 30.0) -> None:
    """Until process `pid` catches `signum` (Linux: the SigCgt mask of /proc/PID/status)."""
    status = Path(f"/proc/{pid}/status")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not status.exists():
            time.sleep(2.0)  # no /proc: charrnn's own imports take well under this
            return
        masks = dict(line.split(":\t", 1) for line in status.read_text().splitlines())
        if int(masks["SigCgt"], 16) >> (signum - 1) & 1:
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} never caught signal {signum}")


def test_ctrl_c_inherited_as_ignored_is_still_answered_from_the_first_moment(
    tiny_corpus, charrnn_home
):
    """`charrnn train ... &` in a script starts with SIGINT ignored: a `kill -INT` sent while
    it is still starting (importing torch, reading the corpus) must not be lost, leaving
    training to run on."""
    proc = spawn(
        "train", "--corpus", str(tiny_corpus), "--run", "i", *TINY, "--epochs", "100000",
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )  # fmt: skip
    _wait_until_caught(proc.pid, signal.SIGINT)  # the moment charrnn starts, well before torch
    assert not (charrnn_home / "runs" / "i").exists()  # still starting: no run folder yet
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
