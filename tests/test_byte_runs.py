"""A `--vocab bytes` run end to end: it trains on UTF-8 bytes, samples text that is always
valid UTF-8, scores in bits per byte (and per character), records its kind, resumes as one.
Also `charrnn eval --max-chars`."""

from __future__ import annotations

import json

import pytest

from charrnn_cli.storage import checkpoint, store
from tests.helpers import TINY, TINY_TEXT

MIXED = "naïve café, 言語の処理, Ελληνικά — “quoted”\n"


@pytest.fixture
def byte_run(trained_run):
    """A bytes run `b` trained once for the session on text with multi-byte characters."""
    return trained_run("b", "--vocab", "bytes", *TINY, "--max-steps", "60", "--eval-every", "30",
                       text=(TINY_TEXT + MIXED) * 3)  # fmt: skip


@pytest.fixture
def half_held_out(trained_run):
    """A character run `c` whose held-out tail is half the text (session-wide, copied)."""
    return trained_run("c", *TINY, "--max-steps", "10", "--val-fraction", "0.5")


def test_a_byte_run_reads_256_ids_and_its_checkpoint_says_so(byte_run, charrnn_home):
    ck = checkpoint.load(store.run_dir(byte_run) / "last.pt")
    model_cfg, _ = checkpoint.configs(ck)
    assert model_cfg.vocab == "bytes" and model_cfg.vocab_size == 256 and len(ck["vocab"]) == 256
    assert store.read_config(byte_run)["model"]["vocab"] == "bytes"


def test_a_byte_run_samples_valid_utf8_from_a_non_ascii_seed(cli, byte_run):
    r = cli("sample", "--run", byte_run, "--seed", "言語", "--len", "400", "--random-seed", "3",
            "--temperature", "1.5")  # fmt: skip
    assert r.code == 0, r.err
    assert r.out.startswith("言語") and len(r.out.encode("utf-8")) >= 400
    r.out.encode("utf-8")  # no lone surrogates: every character whole
    if "\ufffd" in r.out[2:]:  # a wild sample may draw invalid bytes: shown and counted
        assert "invalid UTF-8 byte sequences were shown as U+FFFD" in r.err
    greedy = cli("sample", "--run", byte_run, "--seed", "é", "--beam-width", "2", "--len", "30")
    assert greedy.code == 0 and greedy.out.startswith("é")


def test_many_samples_of_a_byte_run_at_once_are_each_valid_utf8(cli, byte_run):
    """--num draws the streams side by side; each is decoded whole, none cut mid-character."""
    r = cli("sample", "--run", byte_run, "--seed", "言", "--len", "200", "--num", "3",
            "--separator", "\n@@\n", "--random-seed", "5", "--temperature", "1.5")  # fmt: skip
    assert r.code == 0, r.err
    bodies = r.out.split("\n@@\n")
    assert len(bodies) == 3 and all(b.startswith("言") for b in bodies)
    assert len({b for b in bodies}) == 3  # three draws, not one repeated
    r.out.encode("utf-8")  # every character whole


@pytest.mark.parametrize(
    "args", [("sample", "--lines", "3"), ("viz", "surprise", "--text", "abc")], ids=["lines", "viz"]
)
def test_what_works_on_characters_only_refuses_a_byte_run_in_one_line(cli, byte_run, args):
    r = cli(*args, "--run", byte_run)
    assert r.code == 2 and "reads bytes" in r.err and len(r.err.strip().splitlines()) == 1, r.err


def test_eval_of_a_byte_run_reports_bits_per_byte_and_per_character(cli, byte_run, tmp_path):
    d = json.loads(cli("eval", "--run", byte_run, "--json").out)
    assert d["bits_per_byte"] == pytest.approx(d["loss"] / 0.6931471805599453)
    assert d["bytes"] > d["chars"] > 0  # the tail holds multi-byte characters
    assert d["bits_per_char"] == pytest.approx(d["bits_per_byte"] * d["bytes"] / d["chars"])
    other = tmp_path / "other.txt"
    other.write_text(MIXED * 4, encoding="utf-8")
    text = json.loads(cli("eval", "--run", byte_run, "--corpus", str(other), "--json").out)
    assert text["skipped"] == 0 and text["bytes"] > text["chars"]  # no byte is unknown
    human = cli("eval", "--run", byte_run)
    assert "bits/byte" in human.out and "nats/byte" in human.out


def test_a_byte_run_resumes_as_one_and_refuses_to_become_a_character_run(cli, byte_run):
    r = cli("train", "--run", byte_run, "--resume", "--max-steps", "70")
    assert r.code == 0, r.err
    r = cli("train", "--run", byte_run, "--resume", "--vocab", "chars", "--max-steps", "80")
    assert r.code == 2 and "--vocab chars differs from the run's stored bytes" in r.err


def test_eval_max_chars_scores_the_start_of_the_tail(cli, tiny_corpus, half_held_out):
    whole = json.loads(cli("eval", "--run", "c", "--json").out)
    part = json.loads(cli("eval", "--run", "c", "--json", "--max-chars", "1600").out)
    assert part["chars"] == 1600 - 16 < whole["chars"]  # 16 streams, each's first one unscored
    assert "its first 1,600 characters" in part["text"]
    file_part = cli("eval", "--run", "c", "--json", "--corpus", str(tiny_corpus), "--max-chars",
                    "500")  # fmt: skip
    assert json.loads(file_part.out)["chars"] <= 500


def test_eval_max_chars_of_a_text_scores_only_its_first_characters(
    cli, tiny_corpus, monkeypatch, half_held_out
):
    """Read in blocks, a text cut at --max-chars is scored from its first N characters alone,
    as if the rest were not there: never a piece of a later block."""

    head = tiny_corpus.parent / "head.txt"
    head.write_text(tiny_corpus.read_text(encoding="utf-8")[:700], encoding="utf-8")
    monkeypatch.setattr("charrnn_cli.evaluate.BLOCK_CHARS", 300)  # the cut falls in the third block
    cut = json.loads(cli("eval", "--run", "c", "--json", "--corpus", str(tiny_corpus),
                         "--max-chars", "700").out)  # fmt: skip
    alone = json.loads(cli("eval", "--run", "c", "--json", "--corpus", str(head)).out)
    assert cut["chars"] == alone["chars"] and cut["loss"] == pytest.approx(alone["loss"])


def test_a_byte_runs_figures_are_per_byte_and_its_bits_per_char_evals(cli, tmp_path):
    """Training, `runs` and `runs --json` say which figures are per byte; the bits/char they
    give are the true ones (`charrnn eval`'s), so byte and character runs compare."""
    corpus = tmp_path / "mixed.txt"
    corpus.write_text((TINY_TEXT.replace("e", "é") + MIXED) * 3, encoding="utf-8")
    r = cli("train", "--corpus", str(corpus), "--run", "bb", "--vocab", "bytes", *TINY,
            "--max-steps", "20", "--eval-every", "10")  # fmt: skip
    assert r.code == 0, r.err
    assert "256 byte ids" in r.err and "characters" not in r.err.splitlines()[0]
    evals = [line for line in r.err.splitlines() if "held-out" in line and "step" in line]
    last_eval = [line for line in evals if line.startswith("step 20:")][0]
    assert "nats/byte" in last_eval and "bits/byte" in last_eval and "nats/char" not in r.err
    shown = float(last_eval.split(" bits/char")[0].rsplit(" ", 1)[1])
    last = json.loads(cli("eval", "--run", "bb", "--checkpoint", "last", "--json").out)
    assert last["bits_per_char"] != pytest.approx(last["bits_per_byte"], rel=0.05)
    assert shown == pytest.approx(last["bits_per_char"], abs=1e-4)
    best = json.loads(cli("eval", "--run", "bb", "--json").out)
    row = json.loads(cli("runs", "--json").out)[0]
    assert row["unit"] == "byte"
    assert row["best_val_bpb"] == pytest.approx(best["bits_per_byte"], abs=1e-4)
    assert row["best_val_bpc"] == pytest.approx(best["bits_per_char"], abs=1e-4)
    listing = cli("runs").out.split("\t")
    assert f"{best['bits_per_char']:.4f}" in listing
    shown = cli("runs", "show", "bb").out
    assert "nats/byte" in shown and f"({best['bits_per_char']:.4f} bits/char)" in shown
