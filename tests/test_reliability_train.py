"""Training under faults: every numeric option at 0, negative and absurd; names that would escape
the store; corpora that cannot be trained on; injected NaN losses; two trainers on one run;
`kill -9` ten times, half of them inside a checkpoint write; a full disk mid-save.

Whatever happens: one line on stderr, the documented exit code, and a run that still loads and
resumes (see docs/reliability.md).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from charrnn_cli import device
from charrnn_cli.storage import checkpoint
from tests.helpers import (
    TINY,
    TINY_TEXT,
    background_job,
    metrics,
    one_line,
    runs_left,
    spawn,
    wait_for_line,
)
from tests.warm import warm_spawn

BAD_NUMBERS = [
    ["--layers", "0"], ["--layers", "-1"], ["--layers", "1000000000"],
    ["--hidden-size", "0"], ["--hidden-size", "-1"], ["--hidden-size", "1000000000"],
    ["--embed-size", "0"], ["--embed-size", "1000000000"],
    ["--seq-len", "0"], ["--seq-len", "-5"], ["--seq-len", "1000000000"],
    ["--batch-size", "0"], ["--batch-size", "-1"], ["--batch-size", "1000000000"],
    ["--epochs", "0"], ["--epochs", "-1"],
    ["--max-steps", "0"], ["--max-steps", "-3"],
    ["--lr", "-1"], ["--lr", "0"], ["--lr", "1e9"], ["--lr", "nan"], ["--lr", "inf"],
    ["--dropout", "1.5"], ["--dropout", "-0.1"], ["--dropout", "nan"],
    ["--max-minutes", "-1"], ["--max-minutes", "0"], ["--max-minutes", "nan"],
    ["--val-fraction", "0"], ["--val-fraction", "1"], ["--val-fraction", "-0.5"],
    ["--val-fraction", "nan"],
    ["--warmup-steps", "-1"], ["--weight-decay", "-1"], ["--grad-clip", "-1"],
    ["--eval-every", "0"], ["--save-every", "-1"],
    ["--random-seed", "-1"], ["--random-seed", str(2**64)],
    ["--nproc", "0"],
    ["--batch-size", "100000"], ["--seq-len", "100000"],  # valid alone, too big for the text
]  # fmt: skip


def test_every_bad_number_is_one_line_exit_2_and_writes_nothing(cli, tiny_corpus, charrnn_home):
    for extra in BAD_NUMBERS:
        r = cli("train", "--corpus", str(tiny_corpus), "--run", "n", *TINY, *extra)
        line = one_line(r.err)
        assert r.code == 2, (extra, r.err)
        assert extra[0] in line or "corpus" in line, (extra, line)
        assert r.out == "" and runs_left(charrnn_home) == [], extra


@pytest.mark.skipif(torch.cuda.is_available(), reason="bf16 trains on a GPU")
def test_an_option_refused_after_the_lock_leaves_no_empty_run_folder(
    cli, tiny_corpus, charrnn_home, monkeypatch
):
    monkeypatch.setattr(device, "native_bf16", lambda: False)  # a CPU without bf16 arithmetic
    r = cli("train", "--corpus", str(tiny_corpus), "--run", "bf", *TINY, "--precision", "bf16")
    assert r.code == 2 and "no bf16 arithmetic" in one_line(r.err)
    assert runs_left(charrnn_home) == []


def _training_bytes(hidden: int, layers: int) -> tuple[int, int]:
    """(weights + Adam's moments in bytes, this machine's memory) as jobs.check_fits sees
    them."""
    from charrnn_cli.config import ModelConfig
    from charrnn_cli.model import CharRNN

    with torch.device("meta"):
        params = CharRNN(ModelConfig(vocab_size=20, hidden_size=hidden, layers=layers))
    return params.num_parameters() * 12, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def test_a_model_bigger_than_the_machine_is_refused_before_anything(cli, tiny_corpus, charrnn_home):
    need, ram = _training_bytes(16384, 16)
    if need <= ram:  # pragma: no cover
        pytest.skip("this machine could hold a 16384 x 16 LSTM")
    r = cli("train", "--corpus", str(tiny_corpus), "--run", "huge", "--hidden-size", "16384",
            "--layers", "16")  # fmt: skip
    assert r.code == 2 and "GiB of memory" in one_line(r.err)
    assert runs_left(charrnn_home) == []


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA reserves address space at start")
def test_a_model_that_cannot_be_allocated_is_one_line_and_leaves_no_run(tiny_corpus, charrnn_home):
    need, ram = _training_bytes(12288, 2)

    def little_memory() -> None:  # 4 GB of address space: the 7 GB of weights cannot fit
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    proc = spawn("train", "--corpus", str(tiny_corpus), "--run", "big", "--hidden-size", "12288",
                 "--layers", "2", "--max-steps", "1", preexec_fn=little_memory)  # fmt: skip
    _, err = proc.communicate(timeout=120)
    words = "GiB of memory" if need > ram else "out of memory: the model or batch is too large"
    assert proc.returncode == (2 if need > ram else 1) and words in one_line(err), err
    assert runs_left(charrnn_home) == []


@pytest.mark.parametrize(
    "name", ["/", "..", "../escape", "a/b", ".hidden", "x/../y", "ABSOLUTE", "-dash", "a" * 101]
)
def test_run_names_that_could_escape_the_store_are_refused(
    cli, tiny_corpus, charrnn_home, tmp_path, name
):
    escape = tmp_path / "escaped-run"
    name = str(escape) if name == "ABSOLUTE" else name
    for args in (["--corpus", str(tiny_corpus), *TINY, "--max-steps", "2"], ["--resume"]):
        r = cli("train", "--run", name, *args)
        assert r.code == 2 and "not allowed" in one_line(r.err), r.err
    assert runs_left(charrnn_home) == [] and not escape.exists()
    assert not (charrnn_home / "escape").exists() and not (tmp_path / "y").exists()


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (b"", 4, "is empty"),
        (b"a", 2, "fewer than 2 distinct"),
        (b"aaaaaaaaaaaa", 2, "fewer than 2 distinct"),
        (b"ab" * 40, 2, "shrink --batch-size"),
        (b"caf\xe9 au lait\n" * 100, 4, "not UTF-8 text at byte 3"),
        (b"PK\x03\x04\x00\x00binary" * 100, 4, "NUL byte"),
    ],
    ids=["empty", "one-char", "one-distinct", "too-short", "latin1", "binary"],
)
def test_corpora_that_cannot_be_trained_on(cli, tmp_path, charrnn_home, data, code, words):
    path = tmp_path / "corpus.txt"
    path.write_bytes(data)
    r = cli("train", "--corpus", str(path), "--run", "c", *TINY)
    assert r.code == code and words in one_line(r.err), r.err
    assert runs_left(charrnn_home) == []


def test_non_utf8_text_is_exit_4_naming_the_file_where_training_encodes_it(cli, charrnn_home):
    """A cached corpus whose metadata matches its bytes but whose bytes are not UTF-8 (written
    by hand, or by an older charrnn) passes the cache check and fails where it is encoded: the
    same exit 4 and message as a fetch, naming the file and the offset."""
    data = b"caf\xe9 au lait\n" * 100
    cache = charrnn_home / "corpora"
    cache.mkdir(parents=True)
    (cache / "latin.txt").write_bytes(data)
    meta = {"name": "latin", "source": "file:/elsewhere/latin.txt", "size": len(data)}
    meta["sha256"] = hashlib.sha256(data).hexdigest()
    (cache / "latin.json").write_text(json.dumps(meta), encoding="utf-8")
    r = cli("train", "--corpus", "latin", "--run", "c", *TINY)
    stored = cache / "blobs" / f"{meta['sha256']}.txt"  # the old layout, migrated to its blob
    assert r.code == 4 and f"{stored} is not UTF-8 text at byte 3" in one_line(r.err)
    assert runs_left(charrnn_home) == []


def test_an_empty_stdin_corpus_is_refused_and_nothing_is_cached(cli, monkeypatch, charrnn_home):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b""), encoding="utf-8"))
    r = cli("train", "--corpus", "-", "--run", "c", *TINY)
    assert r.code == 4 and "stdin is empty" in one_line(r.err)
    assert runs_left(charrnn_home) == []
    assert not [p for p in (charrnn_home / "corpora").iterdir() if p.suffix in (".txt", ".tmp")]


def test_nan_losses_at_steps_5_and_6_are_skipped_and_counted(
    cli, tiny_corpus, charrnn_home, monkeypatch
):
    monkeypatch.setenv("CHARRNN_FAULT_NAN_STEPS", "5,6")
    r = cli("train", "--corpus", str(tiny_corpus), "--run", "nan", *TINY, "--max-steps", "12")
    assert r.code == 0, r.err
    assert "step 5: loss not finite" in r.err and "step 6: loss not finite" in r.err
    ck = checkpoint.load(charrnn_home / "runs" / "nan" / "last.pt")
    assert ck["step"] == 12 and ck["skipped_steps"] == 2
    assert all(torch.isfinite(t).all() for t in ck["model"].values())
    assert all(math.isfinite(row["train_loss"]) for row in metrics(charrnn_home, "nan"))


@pytest.mark.slow
def test_two_trainers_on_one_run_the_second_is_refused_the_first_undisturbed(
    cli, tiny_corpus, charrnn_home
):
    small = ["--corpus", str(tiny_corpus), *TINY, "--batch-size", "64", "--run", "busy"]
    assert cli("train", *small, "--max-steps", "3").code == 0
    last = charrnn_home / "runs" / "busy" / "last.pt"
    args = ("train", "--run", "busy", "--resume", "--epochs", "100000", "--max-steps", "100000000")
    procs = [warm_spawn(*args), warm_spawn(*args)]  # together: whichever locks first trains
    try:
        deadline = time.monotonic() + 60
        while all(p.poll() is None for p in procs) and time.monotonic() < deadline:
            time.sleep(0.05)
        refused = next(p for p in procs if p.poll() is not None)
        winner = procs[1 - procs.index(refused)]
        _, err2 = refused.communicate(timeout=10)
        assert refused.returncode == 5, err2
        line = one_line(err2)
        assert f"run 'busy' is being trained by pid {winner.pid}" in line
        at_refusal = checkpoint.load(last)["step"]
        while checkpoint.load(last)["step"] <= at_refusal and time.monotonic() < deadline:
            time.sleep(0.05)  # the winner goes on saving checkpoints
        assert winner.poll() is None
        winner.send_signal(signal.SIGTERM)
        _, err1 = winner.communicate(timeout=60)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert winner.returncode == 143 and "Traceback" not in err1, err1
    assert not [x for x in err1.splitlines() if x.startswith("error:")]  # a stop, saved
    assert err1.strip().splitlines()[-1].startswith("SIGTERM: stopped at step")
    stopped = checkpoint.load(last)["step"]
    assert stopped > at_refusal
    assert cli("train", "--run", "busy", "--resume", "--max-steps", str(stopped + 5)).code == 0


def test_the_busy_message_names_the_live_holder_even_in_a_race(charrnn_home):
    """Two lockers at the same instant: the refused one waits for the holder's pid, never
    naming "another process" or the stale pid of an earlier trainer."""
    import threading

    from charrnn_cli.errors import BusyError
    from charrnn_cli.storage import store

    (charrnn_home / "runs" / "r").mkdir(parents=True)
    (charrnn_home / "runs" / "r" / ".lock").write_text("pid 999999999")  # a dead trainer's
    messages: list[str] = []

    def contend(barrier: threading.Barrier) -> None:
        barrier.wait()
        try:
            with store.lock("r"):
                time.sleep(0.05)
        except BusyError as exc:
            messages.append(str(exc))

    for _ in range(30):
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=contend, args=(barrier,)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert messages and all(f"by pid {os.getpid()};" in m for m in messages), messages


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def _hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _kill_series(home: Path, env: dict, run: str, kills: int, seed: int) -> tuple[int, int]:
    """Resume `run` and `kill -9` it `kills` times: odd kills at a random moment (up to 0.8 s
    after it resumed), even ones the moment a checkpoint temp file appears (inside torch.save or
    its fsync). After each kill both checkpoints load, the step never goes back and
    metrics.jsonl parses. Returns the last step and how many kills left a temp file behind
    (landed mid-write)."""
    folder = home / "runs" / run
    rng = random.Random(seed)
    step = checkpoint.load(folder / "last.pt")["step"]
    mid_write = 0
    for i in range(kills):
        proc = warm_spawn("train", "--run", run, "--resume", "--epochs", "100000",
                          "--max-steps", "100000000", base_env=env)  # fmt: skip
        try:
            wait_for_line(proc, "resuming")
            if i % 2:
                time.sleep(rng.uniform(0.0, 0.8))
            else:
                deadline = time.monotonic() + 10
                while not _temps(folder) and time.monotonic() < deadline:
                    time.sleep(0.0005)
        finally:
            proc.kill()
            proc.communicate()
        mid_write += bool(_temps(folder))
        checkpoint.load(folder / "best.pt")
        data = checkpoint.load(folder / "last.pt")
        assert data["step"] >= step
        step = data["step"]
        json.loads((folder / "config.json").read_text())
        metrics(home, run)  # every line parses
    return step, mid_write


@background_job("killed_runs")
def _killed_runs(folder: Path, base_env: dict[str, str]) -> SimpleNamespace:
    """Runs k1 and k2 (3 steps; 8 steps an epoch and a save at each epoch end, so checkpoint
    writes are much of the time), then five kills of each, the two series side by side (the
    two cores overlap the trainers' start-ups). A background job (tests/helpers.py)."""
    from concurrent.futures import ThreadPoolExecutor

    home, corpus = folder / "home", folder / "tiny.txt"
    corpus.write_text(TINY_TEXT, encoding="utf-8")
    env = {**base_env, "CHARRNN_HOME": str(home)}
    both = "import sys\nfrom charrnn_cli.cli import main\nfor run in ('k1', 'k2'):\n"
    both += "    assert main([*sys.argv[1:], '--run', run]) == 0\n"
    subprocess.run([sys.executable, "-c", both, "train", "--corpus", str(corpus), *TINY,
                    "--batch-size", "64", "--max-steps", "3", "--quiet"],
                   env=env, check=True, capture_output=True, timeout=300)  # fmt: skip
    with ThreadPoolExecutor(2) as pool:
        series = [pool.submit(_kill_series, home, env, run, 5, seed)
                  for seed, run in enumerate(("k1", "k2"))]  # fmt: skip
        return SimpleNamespace(home=home, results=[f.result() for f in series])


@pytest.mark.slow
def test_kill_9_ten_times_half_inside_checkpoint_writes_always_resumes(
    cli, background, monkeypatch
):
    killed = background.result("killed_runs")
    monkeypatch.setenv("CHARRNN_HOME", str(killed.home))
    assert sum(mid for _, mid in killed.results) >= 1, "no kill landed inside a checkpoint write"
    for run, (step, _) in zip(("k1", "k2"), killed.results, strict=True):
        folder = killed.home / "runs" / run
        r = cli("train", "--run", run, "--resume", "--max-steps", str(step + 3))
        assert r.code == 0, r.err  # the limits given on the killed resumes (--epochs) were kept
        assert checkpoint.load(folder / "last.pt")["step"] == step + 3
        assert _temps(folder) == []  # the killed writers' temps were swept
        steps = [row["step"] for row in metrics(killed.home, run)]
        assert steps == sorted(steps)
        r = cli("train", "--run", run, "--resume")
        assert r.code == 2 and "already reached" in r.err


@pytest.mark.slow
def test_a_full_disk_during_a_checkpoint_write_keeps_the_previous_one(
    cli, tiny_corpus, charrnn_home
):
    small = ["--corpus", str(tiny_corpus), *TINY, "--batch-size", "64", "--run", "full"]
    assert cli("train", *small, "--max-steps", "3").code == 0
    folder = charrnn_home / "runs" / "full"
    # config.json records the limits given anew on --resume; the checkpoints must not change
    before = {name: _hash(folder / name) for name in ("last.pt", "best.pt")}
    limit = (folder / "last.pt").stat().st_size // 2  # a checkpoint no longer fits

    # a full disk: writes past `limit` fail (EFBIG, with SIGXFSZ ignored as a shell would)
    proc = warm_spawn("train", "--run", "full", "--resume", "--max-steps", "100",
                      ignore=(signal.SIGXFSZ,), limits={resource.RLIMIT_FSIZE: limit})  # fmt: skip
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    line = err.strip().splitlines()[-1]
    assert "Traceback" not in err and line.startswith("error: cannot write ")
    assert ".pt: file too large" in line
    assert [x.startswith("error:") for x in err.splitlines()].count(True) == 1
    assert {name: _hash(folder / name) for name in before} == before
    assert _temps(folder) == []
    assert checkpoint.load(folder / "last.pt")["step"] == 3
    metrics(charrnn_home, "full")
    r = cli("train", "--run", "full", "--resume", "--max-steps", "10")  # space again: resumes
    assert r.code == 0, r.err
    assert checkpoint.load(folder / "last.pt")["step"] == 10
