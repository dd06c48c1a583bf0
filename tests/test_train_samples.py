"""Samples while training: one after each evaluation, shown on stderr (escaped), kept in the
run's samples.jsonl and listed by `runs show --samples`; the same seed gives the same samples,
and a run with samples trains exactly as one without."""

from __future__ import annotations

import json

import pytest
import torch

from charrnn_cli import console
from charrnn_cli.commands.train_samples import visible
from charrnn_cli.errors import EXIT_USAGE
from charrnn_cli.storage import checkpoint
from tests.helpers import TINY, one_line, val_losses

STEPS = ["--max-steps", "60", "--eval-every", "20"]


def _train(cli, corpus, run: str, *extra: str):
    r = cli("train", "--corpus", str(corpus), "--run", run, *TINY, *STEPS, *extra)
    assert r.code == 0, r.err
    return r


def _samples(cli, run: str) -> list[dict]:
    r = cli("runs", "show", run, "--samples", "--json")
    assert r.code == 0, r.err
    return json.loads(r.out)


def test_a_sample_follows_each_evaluation_shown_kept_and_listed(cli, tiny_corpus, charrnn_home):
    r = _train(cli, tiny_corpus, "s")
    assert r.out.strip() == str(charrnn_home / "runs" / "s")  # stdout: the folder alone
    samples = _samples(cli, "s")
    assert [s["step"] for s in samples] == [20, 40, 60]
    assert [s["val_loss"] for s in samples] == pytest.approx(
        [val_losses(charrnn_home, "s")[k] for k in (20, 40, 60)]
    )
    assert all(s["temperature"] == 0.8 and len(s["text"]) == 200 for s in samples)
    kept = (charrnn_home / "runs" / "s" / "samples.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in kept] == samples
    # on stderr, each sample right under its evaluation's line, a line of text behind a bar
    lines = r.err.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("step 60: held-out"))
    first = samples[-1]["text"].split("\n")[0]
    assert lines[at + 1].rstrip() == f"  │ {first}".rstrip()
    # the table, and `runs show` ends with the latest sample
    table = cli("runs", "show", "s", "--samples")
    longest = max(samples[-1]["text"].split("\n"), key=len)
    assert table.code == 0 and longest.strip()[:12] in table.out
    show = cli("runs", "show", "s")
    assert show.code == 0 and "latest sample at step 60 (held-out" in show.out
    assert show.out.rstrip().endswith(samples[-1]["text"].split("\n")[-1].rstrip())


def test_samples_leave_training_as_it_was(cli, tiny_corpus, charrnn_home):
    """Dropout on: a sample left in eval mode (or drawing from training's RNG) would change
    every step after it."""
    common = ("--dropout", "0.2", "--layers", "2", "--random-seed", "4")
    _train(cli, tiny_corpus, "with", *common)
    _train(cli, tiny_corpus, "every7", *common, "--sample-every", "7")
    _train(cli, tiny_corpus, "without", *common, "--sample-every", "0")
    assert len(_samples(cli, "with")) == 3 and len(_samples(cli, "every7")) == 8
    assert _samples(cli, "without") == []  # no samples: [] and no error
    assert not (charrnn_home / "runs" / "without" / "samples.jsonl").exists()
    ref = checkpoint.load(charrnn_home / "runs" / "without" / "last.pt")["model"]
    for run in ("with", "every7"):
        got = checkpoint.load(charrnn_home / "runs" / run / "last.pt")["model"]
        for key in ref:
            torch.testing.assert_close(got[key], ref[key], rtol=0, atol=0)
        assert val_losses(charrnn_home, run) == val_losses(charrnn_home, "without")


def test_the_same_seed_gives_the_same_samples_and_quiet_hides_them(cli, tiny_corpus):
    shown = _train(cli, tiny_corpus, "a", "--random-seed", "7")
    quiet = _train(cli, tiny_corpus, "b", "--random-seed", "7", "--quiet")
    _train(cli, tiny_corpus, "c", "--random-seed", "8")
    a, b, c = (_samples(cli, run) for run in "abc")
    assert [s["text"] for s in a] == [s["text"] for s in b] != [s["text"] for s in c]
    assert "│" in shown.err and quiet.err == ""


def test_sample_every_seed_length_and_temperature(cli, tiny_corpus):
    _train(cli, tiny_corpus, "o", "--sample-every", "25", "--sample-seed", "the ",
           "--sample-len", "30", "--sample-temperature", "0")  # fmt: skip
    samples = _samples(cli, "o")
    assert [s["step"] for s in samples] == [25, 50]
    assert all(s["text"].startswith("the ") and len(s["text"]) == 34 for s in samples)
    assert [s["val_loss"] for s in samples] == [None, None]  # no evaluation at 25 or 50
    assert all(s["temperature"] == 0 for s in samples)


def test_a_sample_seed_the_corpus_cannot_spell_is_refused(cli, tiny_corpus, charrnn_home):
    r = cli("train", "--corpus", str(tiny_corpus), "--run", "z", *TINY, *STEPS,
            "--sample-seed", "Zebra")  # fmt: skip
    assert r.code == EXIT_USAGE
    assert "--sample-seed has characters the corpus lacks: 'Z'" in one_line(r.err)
    assert not (charrnn_home / "runs" / "z").exists()


def test_control_characters_are_shown_as_symbols():
    text = "a\x1b[31mred\x07\r\n\tb\x00\x7f\x9b\u202e\u2028c\n"
    # as viz shows them (console.visible): a C1 or bidirectional control is the replacement
    # character, a line separator ␤
    assert visible(text) == "a␛[31mred␇␍\n␉b␀␡\ufffd\ufffd␤c\n"


def test_a_corpus_of_control_characters_never_reaches_stderr_raw(cli, tmp_path):
    corpus = tmp_path / "ctl.txt"
    corpus.write_text("ab\x1b[31mcd\x07 ef\n" * 400)
    r = _train(cli, corpus, "ctl")
    samples = _samples(cli, "ctl")
    assert any("\x1b" in s["text"] or "\x07" in s["text"] for s in samples)  # drawn...
    assert "\x1b" not in r.err and "\x07" not in r.err and "␛" in r.err  # ...shown escaped
    shown = cli("runs", "show", "ctl", "--samples").out + cli("runs", "show", "ctl").out
    assert "\x1b" not in shown and "\x07" not in shown


def test_the_live_display_shows_samples_too(cli, tiny_corpus, monkeypatch):
    monkeypatch.setattr(console, "is_interactive", lambda: True)
    r = _train(cli, tiny_corpus, "live")
    longest = max(_samples(cli, "live")[0]["text"].split("\n"), key=len)
    assert f"│ {longest}" in r.err


def test_a_resumed_run_keeps_one_sample_a_step(cli, tiny_corpus, charrnn_home):
    common = ["--corpus", str(tiny_corpus), *TINY, "--eval-every", "20", "--run", "r"]
    assert cli("train", *common, "--max-steps", "40").code == 0
    path = charrnn_home / "runs" / "r" / "samples.jsonl"
    with open(path, "a") as fh:  # a sample written after the checkpoint, then a kill
        fh.write(json.dumps({"step": 50, "val_loss": None, "temperature": 1, "text": "x"}))
        fh.write('\n{"step": 55, "te')  # and a torn line
    r = cli("train", *common, "--max-steps", "80", "--resume", "--sample-len", "50")
    assert r.code == 0, r.err
    samples = _samples(cli, "r")
    assert [s["step"] for s in samples] == [20, 40, 60, 65, 80]  # 65: the epoch's end
    assert [len(s["text"]) for s in samples] == [200, 200, 50, 50, 50]  # --sample-len anew


def test_a_damaged_samples_line_is_said_and_skipped(cli, tiny_corpus, charrnn_home):
    _train(cli, tiny_corpus, "d")
    path = charrnn_home / "runs" / "d" / "samples.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], '{"step": "x"}', "not json", *lines[1:]]) + "\n")
    r = cli("runs", "show", "d", "--samples", "--json")
    assert r.code == 0 and [s["step"] for s in json.loads(r.out)] == [20, 40, 60]
    assert "samples.jsonl line 2: step is not a whole number" in r.err
    assert "samples.jsonl line 3: not JSON" in r.err
