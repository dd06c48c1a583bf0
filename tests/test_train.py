"""Training: the loss falls, resume is exact, bad input is refused, non-finite steps are
skipped. (Whatever stops a real trainer, a signal or kill -9, is in test_reliability_signals.py
and test_reliability_train.py.)"""

from __future__ import annotations

import math

import pytest
import torch

from charrnn_cli import device
from charrnn_cli.storage import checkpoint, store
from tests.helpers import TINY, metrics, one_line, runs_left, val_losses


def test_loss_falls_well_below_the_unigram_entropy(cli, tiny_corpus, charrnn_home):
    r = cli("train", "--corpus", str(tiny_corpus), "--run", "t", *TINY, "--max-steps", "150",
            "--eval-every", "50", "--lr", "0.02")  # fmt: skip
    assert r.code == 0, r.err
    assert r.out.strip().endswith("runs/t")
    losses = val_losses(charrnn_home, "t")
    text = tiny_corpus.read_text()
    freq = [text.count(c) / len(text) for c in set(text)]
    unigram = -sum(p * math.log(p) for p in freq)
    assert losses[150] < losses[50] < unigram
    assert losses[150] < 0.5 * unigram
    for name in ("config.json", "metrics.jsonl", "last.pt", "best.pt"):
        assert (charrnn_home / "runs" / "t" / name).exists()
    keys = {"step", "epoch", "elapsed_s", "lr", "train_loss", "chars_per_sec"}
    assert all(keys <= set(row) for row in metrics(charrnn_home, "t"))


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_other_cells_train(cli, tiny_corpus, charrnn_home, cell):
    r = cli("train", "--corpus", str(tiny_corpus), "--run", cell, "--cell", cell, *TINY,
            "--max-steps", "60")  # fmt: skip
    assert r.code == 0, r.err
    assert store.read_config(cell)["model"]["cell"] == cell


BF16 = pytest.mark.skipif(not device.native_bf16(), reason="this CPU has no bf16 arithmetic")


@pytest.mark.parametrize("precision", ["fp32", pytest.param("bf16", marks=BF16)])
def test_resume_matches_an_uninterrupted_run(cli, tiny_corpus, charrnn_home, precision):
    common = ["--corpus", str(tiny_corpus), *TINY, "--eval-every", "10", "--dropout", "0.1",
              "--layers", "2", "--lr-schedule", "constant", "--random-seed", "3",
              "--precision", precision, "--device", "cpu"]  # fmt: skip
    assert cli("train", *common, "--run", "straight", "--max-steps", "90").code == 0
    assert cli("train", *common, "--run", "split", "--max-steps", "45").code == 0
    r = cli("train", *common, "--run", "split", "--max-steps", "90", "--resume")
    assert r.code == 0, r.err
    straight, split = val_losses(charrnn_home, "straight"), val_losses(charrnn_home, "split")
    assert straight.keys() <= split.keys()  # the split run also evaluated where it stopped
    for step in straight:
        assert straight[step] == pytest.approx(split[step], abs=1e-6), step
    a = checkpoint.load(charrnn_home / "runs" / "straight" / "last.pt")["model"]
    b = checkpoint.load(charrnn_home / "runs" / "split" / "last.pt")["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)


def test_resume_refuses_changed_options_and_corpus(cli, tiny_corpus, tmp_path):
    assert (
        cli("train", "--corpus", str(tiny_corpus), "--run", "r", *TINY, "--max-steps", "5").code
        == 0
    )
    r = cli("train", "--run", "r", "--resume", "--hidden-size", "32")
    assert r.code == 2 and "--hidden-size" in r.err
    other = tmp_path / "other.txt"
    other.write_text("something else entirely\n" * 100)
    r = cli("train", "--run", "r", "--resume", "--corpus", str(other))
    assert r.code == 2 and "not the text" in r.err
    r = cli("train", "--run", "r", "--resume", "--max-steps", "8")
    assert r.code == 0, r.err


def test_a_resume_with_nothing_left_names_the_limit_that_binds(cli, tiny_corpus):
    """The README's `--resume --epochs 10` on a run started with --max-steps: the stored
    --max-steps ends it, so the message says so (and never asks to raise the --epochs just
    raised); the epoch is the one the progress line showed."""
    args = ("train", "--corpus", str(tiny_corpus), "--run", "m", *TINY, "--max-steps", "6")
    assert cli(*args).code == 0
    r = cli("train", "--run", "m", "--resume", "--epochs", "10")
    line = one_line(r.err)
    assert r.code == 2 and "already reached step 6 (epoch 1)" in line
    assert "its --max-steps 6 ends it" in line and "--max-steps 12" in line
    assert "--epochs" not in line
    r = cli("train", "--run", "m", "--resume", "--max-steps", "100000", "--epochs", "1")
    assert r.code == 0, r.err  # one epoch of the tiny text is under 100000 steps
    r = cli("train", "--run", "m", "--resume")
    line = one_line(r.err)
    assert r.code == 2 and "its --epochs 1 (" in line and "larger --epochs" in line
    assert "larger --max-steps" not in line


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["--run", "../evil"], 2, "not allowed"),
        (["--run", "a/b"], 2, "not allowed"),
        (["--val-fraction", "1.5"], 2, "val-fraction"),
        (["--batch-size", "0"], 2, "batch-size"),
        (["--lr", "-1"], 2, "lr"),
        (["--batch-size", "4000"], 2, "shrink --batch-size"),
        (["--cell", "transformer"], 2, "cell"),
        (["--precision", "fp16", "--device", "cpu"], 2, "GPU"),
        (["--device", "cuda:7"], 2, "cuda"),
    ],
)
def test_bad_options_are_one_line_and_write_nothing(
    cli, tiny_corpus, charrnn_home, args, code, words
):
    r = cli("train", "--corpus", str(tiny_corpus), *TINY, "--max-steps", "3", *args)
    assert r.code == code, r.err
    assert words in r.err and "Traceback" not in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert runs_left(charrnn_home) == []  # no run folder, no config.json, no checkpoint


def test_empty_short_and_binary_corpora_are_refused(cli, tmp_path, charrnn_home):
    cases = {
        "empty.txt": b"",
        "one.txt": b"aaaa",
        "short.txt": b"ab" * 20,
        "bin.txt": b"ok\xff\xfe",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        r = cli("train", "--corpus", str(tmp_path / name), "--run", name.split(".")[0])
        assert r.code != 0 and "Traceback" not in r.err, (name, r.err)
        assert len(r.err.strip().splitlines()) == 1, r.err
    assert runs_left(charrnn_home) == []


def test_resume_of_a_missing_run_is_an_error(cli):
    r = cli("train", "--run", "ghost", "--resume")
    assert r.code == 1 and "no such run" in r.err


def test_an_existing_run_is_not_overwritten(cli, tiny_corpus, charrnn_home):
    assert (
        cli("train", "--corpus", str(tiny_corpus), "--run", "x", *TINY, "--max-steps", "3").code
        == 0
    )
    folder = charrnn_home / "runs" / "x"
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert folder / "last.pt" in before and all(v for p, v in before.items() if p.name != ".lock")
    r = cli("train", "--corpus", str(tiny_corpus), "--run", "x", *TINY, "--max-steps", "3")
    assert r.code == 1 and "already exists" in r.err
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_a_second_trainer_on_the_same_run_is_refused(cli, tiny_corpus):
    assert (
        cli("train", "--corpus", str(tiny_corpus), "--run", "busy", *TINY, "--max-steps", "3").code
        == 0
    )
    with store.lock("busy"):
        r = cli("train", "--run", "busy", "--resume", "--max-steps", "6")
    assert r.code == 5 and "being trained" in r.err


def test_non_finite_steps_are_skipped_then_training_stops(
    cli, tiny_corpus, charrnn_home, monkeypatch
):
    monkeypatch.setenv("CHARRNN_FAULT_NAN_STEPS", "4")
    r = cli("train", "--corpus", str(tiny_corpus), "--run", "n", *TINY, "--max-steps", "20")
    assert r.code == 0 and "not finite" in r.err
    good = checkpoint.load(charrnn_home / "runs" / "n" / "last.pt")
    assert good["skipped_steps"] == 1
    monkeypatch.setenv("CHARRNN_FAULT_NAN_STEPS", "23,24,25,26,27,28")
    r = cli("train", "--run", "n", "--resume", "--max-steps", "40")
    assert r.code == 1 and "5 steps in a row" in r.err and "--lr" in r.err
    kept = checkpoint.load(charrnn_home / "runs" / "n" / "last.pt")
    assert kept["step"] == 20  # the last good checkpoint is untouched
