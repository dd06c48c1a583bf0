"""Every signal that would end training is answered like Ctrl-C: finish the step, save, exit
128 + the signal's number; a closed terminal (SIGHUP, then writes that fail) included.

The real trainers below (ten processes, most forked warm: tests/warm.py) are started side by
side by one background job (see tests/helpers.py) while the session's other tests run; each
test reads how its trainer ended and resumes the run it left."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest

from charrnn_cli import errors
from charrnn_cli.storage import checkpoint
from charrnn_cli.training.interrupts import Stopper
from tests.helpers import TINY, TINY_TEXT, background_job, spawn, wait_for_metrics
from tests.warm import warm_spawn


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


# Ctrl-C and SIGTERM first: their exit codes are documented (130, 143)
SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
           signal.SIGALRM]  # fmt: skip


def _alive(proc) -> bool:
    return proc.poll() is None


def _stop_with(proc, run: Path, signum: int) -> SimpleNamespace:
    """Once the trainer has logged a step, send it `signum`; how it ended."""
    wait_for_metrics(run / "metrics.jsonl", partial(_alive, proc), timeout=120)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    return SimpleNamespace(code=proc.returncode, out=out, err=err)


def _hang_up_then_terminate(proc, run: Path) -> SimpleNamespace:
    """SIGHUP (ignored, as nohup asked), a second later whether it still trains, then SIGTERM."""
    wait_for_metrics(run / "metrics.jsonl", partial(_alive, proc), timeout=120)
    proc.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    alive = _alive(proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    return SimpleNamespace(alive_after_hup=alive, code=proc.returncode, err=err)


def _reader_leaves(proc) -> SimpleNamespace:
    first = proc.stderr.readline()
    proc.stderr.close()  # the reader leaves
    proc.wait(timeout=120)
    return SimpleNamespace(first=first, code=proc.returncode)


def _terminal_closes(pid: int, master: int, run: Path) -> SimpleNamespace:
    """The pty's master is closed once the trainer has logged a step: its exit status."""

    def drain() -> None:  # the live progress bar fills the pty unless it is read
        while select.select([master], [], [], 0)[0]:
            try:
                if not os.read(master, 65536):
                    return
            except OSError:
                return

    def alive() -> bool:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)

    wait_for_metrics(run / "metrics.jsonl", alive, timeout=120, drain=drain)
    time.sleep(0.5)
    os.close(master)  # the terminal hangs up
    deadline = time.monotonic() + 60
    while (status := os.waitpid(pid, os.WNOHANG)) == (0, 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    return SimpleNamespace(code=os.waitstatus_to_exitcode(status[1]))


def _wait_until_caught(pid: int, signum: int, timeout: float = 60.0) -> None:
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


def _interrupted_while_starting(proc, run: Path) -> SimpleNamespace:
    _wait_until_caught(proc.pid, signal.SIGINT)  # the moment charrnn starts, well before torch
    started = run.exists()  # still starting: no run folder yet
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    return SimpleNamespace(run_existed=started, code=proc.returncode, err=err)


def _signal_trainers(folder: Path, base_env: dict[str, str]) -> SimpleNamespace:
    """Every trainer of this module, all started before any is waited for; `ended[NAME]` says
    how each ended, `home` holds their runs (one each, named as in `ended`). A background job
    (tests/helpers.py): it starts processes and waits, never touching os.environ."""
    home, corpus = folder / "home", folder / "tiny.txt"
    corpus.write_text(TINY_TEXT, encoding="utf-8")
    env = {"CHARRNN_HOME": str(home)}
    start = partial(spawn, env=env, base_env=base_env)  # exec'd: for the start-up's own test
    warm = partial(warm_spawn, env=env, base_env=base_env)  # forked warm (tests/warm.py)
    train = ["train", "--corpus", str(corpus), *TINY, "--epochs", "100000"]
    runs = home / "runs"
    jobs, procs = {}, []
    # every process is started here, in this thread; the threads below only wait and signal
    for signum in SIGNALS:
        name = errors.signal_name(signum)
        procs.append(warm(*train, "--run", name))
        jobs[name] = partial(_stop_with, procs[-1], runs / name, signum)
    procs.append(warm(*train, "--run", "nohup", ignore=(signal.SIGHUP,)))  # what nohup does
    jobs["nohup"] = partial(_hang_up_then_terminate, procs[-1], runs / "nohup")
    procs.append(warm(*train, "--run", "pipe", "--eval-every", "2"))
    jobs["pipe"] = partial(_reader_leaves, procs[-1])
    procs.append(start(*train, "--run", "ignored", shell="trap '' INT"))  # `&` in a script
    jobs["ignored"] = partial(_interrupted_while_starting, procs[-1], runs / "ignored")
    if sys.platform != "win32":
        import pty

        args = [sys.executable, "-m", "charrnn_cli", *train, "--run", "terminal"]
        child_env = {**base_env, **env}
        pid, master = pty.fork()
        if pid == 0:  # the child: a session leader whose controlling terminal is the pty
            os.execve(sys.executable, args, child_env)
        jobs["terminal"] = partial(_terminal_closes, pid, master, runs / "terminal")
    try:
        with ThreadPoolExecutor(len(jobs)) as pool:
            futures = {name: pool.submit(job) for name, job in jobs.items()}
            ended = {name: future.result() for name, future in futures.items()}
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return SimpleNamespace(home=home, ended=ended)


background_job("trainers")(_signal_trainers)


@pytest.fixture(scope="module")
def trainers(background) -> SimpleNamespace:
    """How each trainer of the module ended (started in the background at the session's start)."""
    return background.result("trainers")


def _saved_at_the_stop(trainers, run: str, err: str | None = None) -> None:
    """last.pt holds the step training stopped at (the last metrics row's, and the "stopped at
    step N" line's where there is one), not the save of an earlier epoch's end."""
    folder = trainers.home / "runs" / run
    saved = checkpoint.load(folder / "last.pt")["step"]
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert saved == rows[-1]["step"], (saved, rows[-1])
    if err is not None:
        stopped = re.search(r"stopped at step (\d+) and saved", err)
        assert stopped and int(stopped.group(1)) == saved, err


def _resumes(cli, monkeypatch, trainers, run: str) -> None:
    """The run the trainer left loads and trains on from where it stopped."""
    monkeypatch.setenv("CHARRNN_HOME", str(trainers.home))
    saved = checkpoint.load(trainers.home / "runs" / run / "last.pt")
    r = cli("train", "--run", run, "--resume", "--max-steps", str(saved["step"] + 5))
    assert r.code == 0, r.err


@pytest.mark.parametrize("signum", SIGNALS, ids=errors.signal_name)
def test_a_signal_during_training_saves_and_exits_128_plus_its_number(
    trainers, cli, monkeypatch, signum
):
    name = errors.signal_name(signum)
    ended = trainers.ended[name]
    assert ended.code == 128 + signum, ended.err
    assert "Traceback" not in ended.err and "--resume" in ended.err and name in ended.err
    run = trainers.home / "runs" / name
    # saved: the folder on stdout as at a finish (`dir=$(charrnn train ...)`), a stop on
    # stderr that is not an error
    assert ended.out == f"{run}\n"
    lines = ended.err.strip().splitlines()
    # no line an error's (the samples shown at each evaluation may hold any letters, "error" too)
    assert lines[-1].startswith(f"{name}: stopped at step "), ended.err
    assert not [ln for ln in lines if ln.startswith("error:")], ended.err  # internal ones too
    assert not (run / ".lock").read_text().strip()  # the lock is released, not left behind
    _saved_at_the_stop(trainers, name, ended.err)
    _resumes(cli, monkeypatch, trainers, name)


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_a_closed_terminal_saves_the_run_and_exits_129(trainers, cli, monkeypatch):
    """The trainer's controlling terminal goes away (an SSH session dropped): the kernel sends
    SIGHUP and every later write to the terminal fails; the run is still saved."""
    assert trainers.ended["terminal"].code == 129
    _saved_at_the_stop(trainers, "terminal")  # its stderr was the terminal: the metrics tell
    _resumes(cli, monkeypatch, trainers, "terminal")


def test_nohup_keeps_training_through_a_hang_up(trainers):
    ended = trainers.ended["nohup"]
    assert ended.alive_after_hup  # ignored, as nohup asked
    assert ended.code == 143 and "SIGHUP" not in ended.err, ended.err


def test_a_reader_of_the_progress_that_leaves_stops_training_as_sigpipe_would(trainers):
    """`charrnn train 2>&1 | head -2`: Python ignores SIGPIPE, so the next progress line fails
    with EPIPE; the run stops after its step and saves (exit 141), never ends unsaved."""
    ended = trainers.ended["pipe"]
    assert "training on" in ended.first
    assert ended.code == 128 + signal.SIGPIPE
    assert checkpoint.load(trainers.home / "runs" / "pipe" / "last.pt")["step"] >= 1
    _saved_at_the_stop(trainers, "pipe")


def test_ctrl_c_inherited_as_ignored_is_still_answered_from_the_first_moment(trainers):
    """`charrnn train ... &` in a script starts with SIGINT ignored: a `kill -INT` sent while
    it is still starting (importing torch, reading the corpus) must not be lost, leaving
    training to run on."""
    ended = trainers.ended["ignored"]
    assert not ended.run_existed
    assert ended.code == 130, ended.err
    assert "Traceback" not in ended.err
