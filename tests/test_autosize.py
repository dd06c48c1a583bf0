"""`--preset auto`: the choice grows with the budget and the text, regularises as the passes
grow, yields to the options given, and is printed and stored."""

from __future__ import annotations

import json

import pytest

from charrnn_cli import config
from charrnn_cli.training import autosize
from tests.helpers import TINY

SPEED = 24_500  # chars/s of a 256x2 step on a 2-core AVX-512 CPU (the cpu preset's machine)


def _pick(chars: int, minutes: float, speed: float = SPEED, **given) -> dict:
    return autosize.choose(chars, 65, {"max_minutes": minutes, **given}, speed)[0]


def test_the_cpu_presets_case_gives_the_cpu_presets_model():
    """...in steps of 64 rows where the budget holds many (table D), of fewer where it holds few
    steps of 64: 32 rows, or 16 where 32 still leave few (docs/quality.md, table F), never
    fewer; and of 128 x 128 on a GPU."""
    o = _pick(1_000_000, 5)
    assert (o["hidden_size"], o["layers"], o["seq_len"]) == (256, 2, 64)
    assert o["dropout"] == config.PRESETS["cpu"]["dropout"]
    assert o["batch_size"] == 32 and _pick(1_000_000, 5.37, speed=51_787)["batch_size"] == 64
    # the check's whole text on an AVX2 CPU in fp32: ~1,140 planned steps of 64, ~2,290 of 32
    assert _pick(1_000_000, 6.2, speed=17_507)["batch_size"] == 16
    assert _pick(1_000_000, 0.5, speed=17_507)["batch_size"] == 16
    # ...but never so few rows that a --max-steps beside the minutes ends the run first: 3,000
    # steps of 16 rows hold 3.1M characters, the minutes 4.7M
    assert _pick(1_000_000, 6.2, speed=17_507, max_steps=3_000)["batch_size"] == 32
    # a GPU slower than the speed that marks one (e.g. a laptop's) keeps its rows: the halving
    # is measured only on CPUs, which train as fast at 16 rows as at 64
    slow_gpu = autosize.choose(1_000_000, 65, {"max_minutes": 0.5}, 17_507, on_cpu=False)[0]
    assert slow_gpu["batch_size"] == 64
    assert _pick(1_000_000, 5, speed=400_000)["batch_size"] == 128
    assert _pick(1_000_000, 5, batch_size=48)["batch_size"] == 48
    assert _pick(1_000_000, 5, max_steps=500)["batch_size"] == 64  # the steps are the budget
    # few steps never raise the rows of a text too small to fill 16 (halved, never raised)
    for chars, minutes in ((3_000, 0.05), (10_000, 0.05), (30_000, 0.05), (30_000, 5)):
        assert _pick(chars, minutes)["batch_size"] <= min(64, chars // (65 * 8))
    assert _pick(3_000, 0.05)["batch_size"] < _pick(10_000, 0.05)["batch_size"] == 16
    assert _pick(30_000, 0.05)["batch_size"] == 16


def test_weight_drop_comes_before_more_dropout():
    """Table F: the 220 KB slice where 2x192 makes ~23 passes (pressure ~58) did best with
    dropout 0.1 and weight drop 0.3 (0.2 and 0.3: 0.015 worse at the same steps; 0.1 alone
    overfit); where 2x256 makes ~24 passes (pressure ~107), 0.2 and 0.3 did best (table C)."""
    mid, why_mid = autosize.choose(198_000, 65, {"max_minutes": 3.07}, 19_865)
    high, why_high = autosize.choose(198_000, 65, {"max_minutes": 2.15}, 51_787)
    assert 20 < why_mid["pressure"] < 100 < why_high["pressure"] < 300
    assert (mid["hidden_size"], mid["dropout"], mid["weight_drop"]) == (192, 0.1, 0.3)
    assert (high["hidden_size"], high["dropout"], high["weight_drop"]) == (256, 0.2, 0.3)


def test_more_budget_or_more_text_never_gives_a_smaller_model():
    sizes = [_pick(1_000_000, m)["hidden_size"] for m in (1, 5, 20, 80)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    texts = [_pick(n, 20)["hidden_size"] for n in (20_000, 200_000, 1_000_000)]
    assert texts == sorted(texts) and texts[0] < texts[-1]


def test_regularisation_grows_with_the_passes_over_the_text():
    few, many = _pick(4_000_000, 2), _pick(200_000, 5)
    assert few["dropout"] == few["weight_drop"] == 0.0
    assert many["dropout"] > 0.1 and many["weight_drop"] > 0.0
    assert many["eval_every"] < 500  # often enough to keep the minimum (best.pt)


def test_the_same_passes_regularise_a_text_the_model_can_hold_by_heart_more():
    """About 12 epochs of 2x256 each: on 1 MB (0.9 weights a character) the model does not
    overfit, on 400 KB (2.2 a character) it does (docs/quality.md)."""
    whole, why_whole = autosize.choose(1_000_000, 65, {"max_minutes": 5.37}, 54_000)
    piece, why_piece = autosize.choose(400_000, 65, {"max_minutes": 2.15}, 54_000)
    assert abs(why_whole["epochs"] - why_piece["epochs"]) < 1
    assert whole["hidden_size"] == piece["hidden_size"] == 256
    assert whole["weight_drop"] == 0.0 and piece["weight_drop"] > 0.0
    assert why_piece["pressure"] > 2 * why_whole["pressure"]
    for o in (whole, piece, _pick(20_000, 20)):  # they cost more than they gave (table C)
        assert o["embed_dropout"] == o["locked_dropout"] == 0.0


def test_a_step_budget_needs_no_timing_and_given_options_win():
    o, why = autosize.choose(200_000, 65, {"max_steps": 300, "hidden_size": 32}, None)
    assert o["hidden_size"] == 32 and why["steps"] == 300 and why["budget"] == "300 steps"
    assert o["max_minutes"] is None


def test_tiny_text_gets_a_batch_it_can_fill():
    o = _pick(3_000, 5)
    assert o["batch_size"] * (o["seq_len"] + 1) <= 3_000


def test_auto_prints_its_choice_and_stores_it(cli, tiny_corpus, charrnn_home):
    r = cli("train", "--corpus", str(tiny_corpus), "--run", "a", "--preset", "auto",
            "--max-steps", "20", "--seq-len", "16")  # fmt: skip
    assert r.code == 0, r.err
    line = [x for x in r.err.splitlines() if x.startswith("auto: ")]
    assert len(line) == 1 and "20 steps" in line[0]
    stored = json.loads((charrnn_home / "runs" / "a" / "config.json").read_text())
    assert stored["preset"] == "auto" and stored["auto"]["line"] == line[0]
    assert stored["model"]["hidden_size"] == stored["auto"]["chose"]["hidden_size"]
    assert stored["train"]["seq_len"] == 16
    r = cli("train", "--run", "a", "--resume", "--max-steps", "25")
    assert r.code == 0, r.err


@pytest.mark.slow
def test_auto_on_a_minute_budget_times_the_device(cli, tiny_corpus, charrnn_home):
    r = cli("train", "--corpus", str(tiny_corpus), "--run", "m", "--preset", "auto",
            "--max-minutes", "0.05", *TINY[:2])  # fmt: skip
    assert r.code == 0, r.err
    stored = json.loads((charrnn_home / "runs" / "m" / "config.json").read_text())
    assert stored["auto"]["speed_chars_per_s"] > 0 and stored["model"]["hidden_size"] == 16
