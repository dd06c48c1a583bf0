"""Data-parallel training on the CPU: two gloo ranks on 127.0.0.1, each test with a timeout.

Two ranks of B streams each equal one process of 2B streams (the same rows, and DDP's mean of
the two gradients is the full batch's); the ranks end with identical weights; rank 0 alone
writes; the checkpoint is an ordinary one (sample, eval, single-process resume) and a
distributed resume restores every rank; a bad step on one rank is skipped on both; a rank that
fails ends the job with a clear line, never a hang.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist

from charrnn_cli import console
from charrnn_cli.errors import CharrnnError, Interrupted, UsageError
from charrnn_cli.training import launch
from charrnn_cli.training.distributed import Comm, from_env
from tests.helpers import DIST_OPTS as OPTS
from tests.helpers import DIST_TOL as TOL
from tests.helpers import TINY_TEXT as TEXT
from tests.helpers import TORCHRUN, background_job, metrics, wait_for_metrics
from tests.helpers import dist_env as _env
from tests.helpers import run_cmd as _run
from tests.helpers import torchrun as _torchrun

pytestmark = [
    pytest.mark.skipif(
        sys.platform == "win32" or not dist.is_available() or not dist.is_gloo_available(),
        reason="needs torch.distributed with gloo (Linux/macOS)",
    ),
    pytest.mark.timeout(600),  # the first test waits for every job of the module
]


def _charrnn(*args: str) -> list[str]:
    return [sys.executable, "-m", "charrnn_cli", *args]


def _main(home: Path, *args: str, **env: str) -> int:
    """`charrnn ARGS` in this process (one process, no torchrun)."""
    from charrnn_cli.cli import main

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHARRNN_HOME", str(home))
        for k, v in env.items():
            mp.setenv(k, v)
        console.reset()
        return main(list(args))


def _val(home: Path, run: str) -> dict[int, tuple[float, float]]:
    return {r["step"]: (r["val_loss"], r["train_loss"]) for r in metrics(home, run)
            if "val_loss" in r}  # fmt: skip


def _checkpoint(home: Path, run: str, which: str = "last") -> dict:
    return torch.load(home / "runs" / run / f"{which}.pt", map_location="cpu", weights_only=True)


SPY = """
import os, sys, torch
import charrnn_cli.training.train as T
import importlib, os, sys, torch
from charrnn_cli.cli import main
T = importlib.import_module("charrnn_cli.training.train")

made = []
class Spy(T.CharRNN):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        made.append(self)
T.CharRNN = Spy
args = sys.argv[1:]
code = main(args[1:] if args[:1] == ["--"] else args)
torch.save({k: v.detach().clone() for k, v in made[0].state_dict().items()},
           os.path.join(os.environ["SPY_OUT"], "rank%s.pt" % os.environ["RANK"]))
sys.exit(code)
"""


def _chain_jobs(base: Path, corpus: Path, env: dict[str, str]) -> SimpleNamespace:
    """ddp: torchrun, 2 ranks x 4 streams, steps 1-20; then `charrnn train --nproc 2 --resume`
    to step 40 (a distributed resume)."""
    first = _run(
        _torchrun(base / "logs", "charrnn_cli", "train", "--corpus", str(corpus), "--run", "ddp",
                  *OPTS, "--batch-size", "4", "--max-steps", "20"),
        env, base, timeout=240,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = _run(
        _charrnn("train", "--nproc", "2", "--run", "ddp", "--resume", "--max-steps", "40",
                 "--device", "cpu"),
        env, base, timeout=240,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return SimpleNamespace(first=first, resumed=resumed)


def _bad_step_job(base: Path, corpus: Path, env: dict[str, str]) -> SimpleNamespace:
    """torchrun with a NaN loss at step 5 on rank 1; each rank's final weights kept."""
    spy, out = base / "spy.py", base / "out"
    spy.write_text(SPY)
    out.mkdir()
    env = {**env, "SPY_OUT": str(out), "CHARRNN_FAULT_NAN_STEPS": "5",
           "CHARRNN_FAULT_NAN_RANK": "1"}  # fmt: skip
    args = ["train", "--corpus", str(corpus), "--run", "nan", *OPTS, "--batch-size", "4",
            "--max-steps", "20"]  # fmt: skip
    cmd = [*TORCHRUN, "--standalone", "--nproc-per-node", "2", "--log-dir", str(base / "logs"),
           str(spy), "--", *args]  # fmt: skip
    return SimpleNamespace(proc=_run(cmd, env, base, timeout=240), out=out)


def _busy_job(base: Path, corpus: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`--nproc 2` on a run whose lock this process holds."""
    from charrnn_cli.storage import locks

    folder = base / "home" / "runs" / "busy"
    folder.mkdir(parents=True)
    with locks.file_lock(folder / ".lock") as held:
        assert held.held
        return _run(
            _charrnn("train", "--nproc", "2", "--corpus", str(corpus), "--run", "busy", *OPTS,
                     "--batch-size", "4", "--max-steps", "20"),
            env, base, timeout=240,
        )  # fmt: skip


def _children(pid: int) -> dict[int, int]:
    """{rank: pid} of the worker processes started by `pid` (Linux /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid != pid:
            continue
        for item in environ:
            if item.startswith(b"RANK="):
                found[int(item[5:])] = int(entry.name)
    return found


def _signal_a_rank_job(base, corpus, env, run: str, signum: int, extra: tuple = ()):
    """`--nproc 2` trains; once it has logged a step (and 1 s more when `extra` asks for timed
    saves), `signum` goes to rank 1 alone. Returns (exit code, stderr, ranks found)."""
    home = base / "home"
    proc = subprocess.Popen(
        _charrnn("train", "--nproc", "2", "--corpus", str(corpus), "--run", run, *OPTS,
                 "--batch-size", "4", "--epochs", "1000", *extra),
        env=env, cwd=base, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        log = home / "runs" / run / "metrics.jsonl"
        wait_for_metrics(log, lambda: proc.poll() is None, timeout=180)
        if extra:
            time.sleep(1.0)  # a timed save about every 0.12 s: several while the ranks train
        ranks = _children(proc.pid)
        os.kill(ranks[1] if 1 in ranks else proc.pid, signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, err, sorted(ranks)


def _alone_job(base: Path, corpus: Path, env: dict[str, str]):
    """WORLD_SIZE=2 and a port where the other rank never comes; the seconds it took."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    alone = {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
             "MASTER_PORT": str(port), "CHARRNN_DIST_TIMEOUT": "1"}  # fmt: skip
    start = time.monotonic()
    p = _run(_charrnn("train", "--corpus", str(corpus), *OPTS, "--max-steps", "5"),
             {**env, **alone}, base, timeout=120)  # fmt: skip
    return p, time.monotonic() - start


PROC = Path("/proc/self/environ").exists()
JOBS = {
    "chain": _chain_jobs,
    "nan": _bad_step_job,
    "busy": _busy_job,
    "alone": _alone_job,
    **({"kill": partial(_signal_a_rank_job, run="kill", signum=signal.SIGKILL),
        "int": partial(_signal_a_rank_job, run="int", signum=signal.SIGINT,
                       extra=("--save-every", "0.002"))} if PROC else {}),
}  # fmt: skip


def _in_background(name: str, job) -> None:
    """Run `job(folder, corpus, env)` as background job `ddp-NAME` (tests/helpers.py), with
    its own copy of the corpus; its result is (folder, what the job returned)."""

    def run(folder: Path, base_env: dict[str, str]) -> tuple[Path, object]:
        corpus = folder / "tiny.txt"
        corpus.write_text(TEXT, encoding="utf-8")
        return folder, job(folder, corpus, _env(folder / "home", base=base_env))

    background_job(f"ddp-{name}", fixture="jobs")(run)


for _name, _job in JOBS.items():
    _in_background(_name, _job)


@pytest.fixture(scope="module")
def jobs(background) -> SimpleNamespace:
    """Every multi-process job of this module, run in the background from the session's start
    (a job not started yet when this module comes runs here, beside the one the background is
    running). `jobs.NAME` is what each job returned, `jobs.homes[NAME]` its CHARRNN_HOME.
    Then this process trains the one-process references.

    homes["chain"] holds the chain the tests inspect:
    ddp:  torchrun, 2 ranks x 4 streams, steps 1-20; then `--nproc 2 --resume` to step 40
    solo: a copy of ddp resumed in one process to step 60 (8 streams, the same layout)
    ref:  one process, 8 streams, steps 1-60
    homes["nan"]'s `one` is one process that skips step 5 as the ranks of its `nan` did."""
    done, homes = {}, {}
    # last queued first: those the background has not reached run here, beside it
    for name in reversed(list(JOBS)):
        folder, done[name] = background.result(f"ddp-{name}")
        homes[name] = folder / "home"
    corpus = homes["chain"].parent / "tiny.txt"
    chain_home, nan_home = homes["chain"], homes["nan"]
    assert _main(chain_home, "train", "--corpus", str(corpus), "--run", "ref", *OPTS,
                 "--batch-size", "8", "--max-steps", "60", "--quiet") == 0  # fmt: skip
    assert _main(nan_home, "train", "--corpus", str(nan_home.parent / "tiny.txt"), "--run",
                 "one", *OPTS, "--batch-size", "8", "--max-steps", "20", "--quiet",
                 CHARRNN_FAULT_NAN_STEPS="5") == 0  # fmt: skip
    shutil.copytree(chain_home / "runs" / "ddp", chain_home / "runs" / "solo")
    assert _main(chain_home, "train", "--run", "solo", "--resume", "--max-steps", "60",
                 "--quiet") == 0  # fmt: skip
    return SimpleNamespace(homes=homes, **done)


@pytest.fixture
def chain(jobs) -> SimpleNamespace:
    return SimpleNamespace(home=jobs.homes["chain"], **vars(jobs.chain))


@pytest.mark.slow
def test_two_ranks_match_one_process_through_both_resumes(chain):
    """val_loss (and the global train loss) at steps 10..60 of torchrun -> --nproc resume ->
    single-process resume equal one process of the same global batch."""
    ref, solo, ddp = (_val(chain.home, r) for r in ("ref", "solo", "ddp"))
    assert sorted(ref) == [10, 20, 30, 40, 50, 60]
    assert sorted(ddp) == [10, 20, 30, 40] and sorted(solo) == sorted(ref)
    for step, (val, train_loss) in ref.items():
        assert solo[step][0] == pytest.approx(val, abs=TOL), step
        assert solo[step][1] == pytest.approx(train_loss, abs=TOL), step
        if step in ddp:
            assert ddp[step] == solo[step]  # the copied history
    # the weights themselves
    a, b = _checkpoint(chain.home, "solo")["model"], _checkpoint(chain.home, "ref")["model"]
    for name in b:
        torch.testing.assert_close(a[name], b[name], atol=1e-4, rtol=1e-4)


def test_only_rank_zero_writes_one_ordinary_run(chain):
    runs = chain.home / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["ddp", "ref", "solo"]
    files = sorted(p.name for p in (runs / "ddp").iterdir())
    assert files == [".lock", "best.pt", "config.json", "last.pt", "metrics.jsonl", "samples.jsonl"]
    assert not [p for p in chain.home.rglob("*") if p.name.endswith(".tmp")]
    # one writer: each evaluation logged once, and sampled once (rank 0 alone draws)
    evals = [r["step"] for r in metrics(chain.home, "ddp") if "val_loss" in r]
    assert evals == [10, 20, 30, 40]
    kept = (runs / "ddp" / "samples.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in kept] == evals
    assert json.loads((runs / "ddp" / "config.json").read_text())["world_size"] == 2
    ck = _checkpoint(chain.home, "ddp")
    assert (ck["world_size"], ck["config"]["train"]["batch_size"], ck["step"]) == (2, 4, 40)
    assert [tuple(t.shape) for t in ck["hidden"]] == [(1, 8, 16), (1, 8, 16)]  # all 8 streams
    assert len(ck["rng"]) == 2
    # the one-process resume carried on with the same 8 streams
    solo = _checkpoint(chain.home, "solo")
    assert (solo["world_size"], solo["config"]["train"]["batch_size"], solo["step"]) == (1, 8, 60)
    config = json.loads((runs / "solo" / "config.json").read_text())
    assert (config["world_size"], config["train"]["batch_size"]) == (1, 8)


def test_the_distributed_checkpoint_samples_and_evaluates_in_one_process(chain, cli, monkeypatch):
    monkeypatch.setenv("CHARRNN_HOME", str(chain.home))
    r = cli("sample", "--run", "ddp", "--checkpoint", "last", "--len", "50")
    assert r.code == 0, r.err
    assert len(r.out) >= 50  # the 50 characters (the sample may end in newlines)
    r = cli("eval", "--run", "ddp", "--checkpoint", "last")
    assert r.code == 0, r.err


def test_nproc_launches_the_same_engine(chain):
    """`charrnn train --nproc 2` (here resuming the torchrun run) ran two ranks end to end."""
    assert chain.resumed.stdout.strip().splitlines()[-1] == str(chain.home / "runs" / "ddp")
    assert "resuming on CPU (1 thread) x 2 processes" in chain.resumed.stderr
    assert "Traceback" not in chain.resumed.stderr + chain.first.stderr


def test_a_bad_step_on_one_rank_is_skipped_on_both_and_weights_stay_identical(jobs):
    p, out, home = jobs.nan.proc, jobs.nan.out, jobs.homes["nan"]
    assert p.returncode == 0, p.stderr[-3000:]
    assert "step 5: loss not finite, step skipped" in p.stderr
    w0, w1 = (torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    saved = _checkpoint(home, "nan")
    assert saved["skipped_steps"] == 1 and saved["step"] == 20
    for name, t in w0.items():
        assert torch.isfinite(t).all(), name
        assert torch.equal(t, w1[name]), f"{name} differs between the ranks"
        assert torch.equal(t, saved["model"][name]), f"{name} differs from the checkpoint"
    # one process that skips step 5 too ends the same
    one, two = _val(home, "one"), _val(home, "nan")
    assert sorted(one) == sorted(two) == [10, 20]
    for step in one:
        assert two[step][0] == pytest.approx(one[step][0], abs=TOL)


def test_a_rank_that_fails_ends_the_job_with_its_reason(jobs):
    """Rank 0 cannot take the run's lock (another trainer holds it): it exits 5, the launcher
    stops rank 1 (already waiting in a collective) and says which rank failed."""
    p = jobs.busy
    assert p.returncode == 5, p.stderr[-3000:]
    assert "is being trained by" in p.stderr
    assert "distributed training failed: rank 0 exited with code 5" in p.stderr


@pytest.mark.skipif(not PROC, reason="needs Linux /proc")
def test_a_rank_killed_mid_training_ends_the_job_without_a_hang(jobs):
    code, err, ranks = jobs.kill
    assert ranks == [0, 1]
    assert code == 1, err[-3000:]
    assert "distributed training failed: rank 1 was killed by SIGKILL" in err


@pytest.mark.skipif(not PROC, reason="needs Linux /proc")
def test_a_ctrl_c_on_one_rank_stops_every_rank_at_the_same_step(jobs):
    """SIGINT reaches rank 1 only: the ranks agree to stop after the same step, rank 0 saves,
    and the job ends with 130 (a Ctrl-C in the terminal reaches the launcher, which passes it to
    every rank). Meanwhile a save every ~0.1 s: the ranks agree on when, or they would deadlock
    in mismatched collectives."""
    code, err, _ = jobs.int
    home = jobs.homes["int"]
    assert code == 130, err[-3000:]
    assert "rank 1 got SIGINT: the ranks stopped after the same step" in err
    saved = _checkpoint(home, "int")
    evals = [r["step"] for r in metrics(home, "int") if "val_loss" in r]
    assert evals[-1] == saved["step"] > 0  # the final evaluation, where both ranks stopped
    assert saved["world_size"] == 2
    # both ranks' streams, gathered into one (L, 2B, H) state per tensor of the LSTM; a state of
    # zeros (none saved) is right only at the top of an epoch or after a skipped step
    state = {k: saved[k] for k in ("step", "epoch", "cursor", "skipped_steps")}
    assert [tuple(t.shape) for t in saved["hidden"]] == [(1, 8, 16)] * 2 or (
        not saved["hidden"] and (saved["cursor"] == 0 or saved["skipped_steps"])
    ), (state, [tuple(t.shape) for t in saved["hidden"]], err[-3000:])


def test_joining_the_group_times_out_with_a_clear_message(jobs):
    """WORLD_SIZE=2 but the other rank never comes: no hang, a one-line error."""
    p, seconds = jobs.alone
    assert p.returncode == 1
    assert "rank 0 of 2 could not join the process group (gloo) within 1 s" in p.stderr
    assert seconds < 30
    assert not (jobs.homes["alone"] / "runs").exists()


# ------------------------------------------------------------------ in-process, no ranks


def test_a_single_process_comm_is_local():
    c = Comm()
    assert (c.rank, c.world, c.is_main, c.active) == (0, 1, True, False)
    assert c.any(True, False) == [True, False]
    assert c.max(1.0, 2.5) == [1.0, 2.5] and c.sum(3.0) == [3.0]
    assert c.broadcast_object("x") == "x"
    rows = torch.arange(12.0).reshape(1, 4, 3)  # (L, B, H)
    assert torch.equal(c.gather_rows([rows])[0], rows) and c.gather_objects({"a": 1}) == [{"a": 1}]
    c.close()


def test_from_env_without_torchrun_is_local(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not from_env("auto").active
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(CharrnnError, match="RANK"):
        from_env("cpu")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(UsageError, match="mps"):
        from_env("mps")
    monkeypatch.setenv("CHARRNN_DIST_TIMEOUT", "soon")
    with pytest.raises(UsageError, match="CHARRNN_DIST_TIMEOUT"):
        from_env("cpu")


def test_worker_args_drop_nproc():
    assert launch.worker_args(["train", "--nproc", "2", "--run", "x", "--nproc=3"]) == [
        "train", "--run", "x",
    ]  # fmt: skip


def test_launch_refuses_stdin_nesting_and_a_missing_command_line(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(UsageError, match="stdin"):
        launch.launch(2, ["train", "--nproc", "2", "--corpus", "-"])
    with pytest.raises(CharrnnError, match="sys.argv"):
        launch.launch(2)  # pytest's own argv has no --nproc
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(UsageError, match="inside torchrun"):
        launch.launch(2, ["train", "--nproc", "2"])


def _failure(exitcode: int, timestamp: int = 100) -> SimpleNamespace:
    name = signal.Signals(-exitcode).name if exitcode < 0 else ""
    return SimpleNamespace(exitcode=exitcode, timestamp=timestamp, signal_name=lambda: name)


def test_the_launcher_names_the_rank_that_failed_first():
    # rank 1 was killed; rank 0 then failed in a collective, in the same second
    for failures in ({1: _failure(-9), 0: _failure(1)}, {0: _failure(1), 1: _failure(-9)}):
        err = launch._failure(failures)
        assert "rank 1 was killed by SIGKILL" in str(err) and err.exit_code == 1
    # the rank that torch stopped itself (SIGTERM) is never the cause
    err = launch._failure({0: _failure(-15, 99), 1: _failure(2)})
    assert "rank 1 exited with code 2" in str(err) and err.exit_code == 2
    # a signal to one rank: every rank stopped and saved (rank 0, still exiting, may be stopped)
    for failures in ({1: _failure(130)}, {1: _failure(130), 0: _failure(-15)}):
        err = launch._failure(failures)
        assert isinstance(err, Interrupted) and err.exit_code == 130


def test_the_launcher_turns_a_signal_into_an_interrupted_exit(monkeypatch):
    """Ctrl-C in the terminal reaches the launcher; torch's agent passes it to the ranks (which
    stop together and save), then raises SignalException here."""
    import torch.distributed.run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException

    def interrupted(ns):
        assert ns.module and ns.training_script == "charrnn_cli" and ns.nproc_per_node == "2"
        assert ns.training_script_args == ["train", "--run", "x"]
        raise SignalException("got SIGINT", sigval=signal.SIGINT)

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(torchrun, "run", interrupted)
    with pytest.raises(Interrupted) as info:
        launch.launch(2, ["train", "--nproc", "2", "--run", "x"])
    assert info.value.exit_code == 130
