"""`charrnn eval`: agrees with training, scores stdin and files, refuses what it must."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from tests.helpers import TINY, val_losses


@pytest.fixture
def run(trained_run):
    """A run `e` trained once for the session (80 steps), copied into the test's store."""
    return trained_run("e", *TINY, "--max-steps", "80", "--eval-every", "20")


def test_eval_json_agrees_with_the_best_held_out_loss(cli, run, charrnn_home):
    r = cli("eval", "--run", run, "--json")
    assert r.code == 0, r.err
    d = json.loads(r.out)
    assert set(d) >= {"chars", "loss", "bits_per_char", "perplexity", "accuracy", "skipped"}
    assert d["loss"] == pytest.approx(min(val_losses(charrnn_home, run).values()), abs=1e-9)
    assert d["bits_per_char"] == pytest.approx(d["loss"] / 0.6931471805599453)
    human = cli("eval", "--run", run, "--checkpoint", "last")
    assert human.code == 0 and "bits/char" in human.out


def test_eval_of_a_file_counts_skipped_characters(cli, run, tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("the cat sat on the mat. ΩΩ the dog\n" * 20, encoding="utf-8")
    d = json.loads(cli("eval", "--run", run, "--corpus", str(f), "--json").out)
    assert d["skipped"] == 40 and d["chars"] > 600
    r = cli("eval", "--run", run, "--corpus", str(f), "--strict")
    assert r.code == 2 and "'Ω'" in r.err


def test_eval_reads_stdin_in_a_pipeline(run, tiny_corpus):
    charrnn = f"{sys.executable} -m charrnn_cli"
    cmd = f"head -c 2000 {tiny_corpus} | {charrnn} eval --run e --corpus - --json"
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["chars"] > 1900


def test_eval_refuses_non_utf8_and_empty_text(cli, run, tmp_path, monkeypatch):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"the cat \xff\xfe")
    r = cli("eval", "--run", run, "--corpus", str(bad))
    assert r.code == 4 and f"{bad} is not UTF-8 text at byte 8" in r.err
    # the offset counts from the start of the text, across blocks and a character split by them
    monkeypatch.setattr("charrnn_cli.evaluate.BLOCK_CHARS", 7)
    bad.write_bytes("the cat é sat ".encode() * 3 + b"\xc3(")
    r = cli("eval", "--run", run, "--corpus", str(bad))
    assert r.code == 4 and f"{bad} is not UTF-8 text at byte 45" in r.err
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"the cat \xff")))
    r = cli("eval", "--run", run, "--corpus", "-")
    assert r.code == 4 and "stdin is not UTF-8 text at byte 8" in r.err
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    r = cli("eval", "--run", run, "--corpus", str(empty))
    assert r.code == 2 and "nothing to score" in r.err
