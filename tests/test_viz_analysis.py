"""What viz computes: surprisal that agrees with eval, unit rankings by Pearson r, unit traces
and gate saturation, all on the text's own positions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from charrnn_cli.data import encode
from charrnn_cli.errors import UsageError
from charrnn_cli.evaluate import eval_rows, score
from charrnn_cli.viz import analysis
from charrnn_cli.viz.activations import trace
from tests.helpers import tiny_model

VOCAB = "\n abcdefghij"


def _model(cell: str = "lstm", layers: int = 2) -> torch.nn.Module:
    return tiny_model(len(VOCAB), 8, 16, cell=cell, layers=layers, seed=1)


def _text(n: int = 700) -> str:
    rng = np.random.default_rng(0)
    return "".join(VOCAB[i] for i in rng.integers(0, len(VOCAB), n))


def test_layout_keeps_each_characters_place_and_drops_unknown_ones_like_eval():
    text = "ab?c\nd?e" * 5
    lay = analysis.layout(text, VOCAB)
    ids, dropped = encode.encode_text(text, VOCAB)
    assert dropped == 10
    np.testing.assert_array_equal(lay.ids, eval_rows(ids))
    assert all(text[i] == VOCAB[j] for i, j in zip(lay.index.flat, lay.ids.flat, strict=True))
    with pytest.raises(UsageError, match="fewer than 2"):
        analysis.layout("?x?", VOCAB)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_mean_surprisal_is_evals_bits_per_char(cell):
    model, text = _model(cell), _text(3000)
    s = analysis.surprise(model, analysis.layout(text, VOCAB), top_k=3)
    ids, _ = encode.encode_text(text, VOCAB)
    want = score(model, eval_rows(ids), torch.device("cpu"))
    assert s.scored == want.chars
    assert s.mean == pytest.approx(want.bits_per_char, abs=1e-5)


def test_each_characters_bits_and_top_guesses_come_from_the_prediction_before_it():
    model, text = _model(), ("abc\nab?c\nabba " * 3)[:-1]  # '?' is unknown
    lay = analysis.layout(text, VOCAB)
    s = analysis.surprise(model, lay, top_k=4)
    assert all(math.isnan(s.bits[i]) for i, c in enumerate(text) if c == "?")
    for ids, where in zip(lay.ids, lay.index, strict=True):  # each stream starts afresh
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.from_numpy(ids[None]).long())[0][0], dim=-1)
        assert math.isnan(s.bits[where[0]])  # nothing before a stream's first character
        for k in range(1, len(ids)):
            i = where[k]
            assert s.bits[i] == pytest.approx(-float(logp[k - 1, ids[k]]) / math.log(2), abs=1e-5)
            best = logp[k - 1].topk(4)
            assert s.top_ids[i].tolist() == best.indices.tolist()
            np.testing.assert_allclose(s.top_p[i], best.values.exp().numpy(), atol=1e-6)


def test_a_signal_equal_to_a_units_activation_ranks_that_unit_first_with_r_1():
    model, text = _model(), _text()
    lay = analysis.layout(text, VOCAB)
    (trace_2_5,) = analysis.unit_traces(model, lay, [(2, 5)], state="c")
    signal = np.nan_to_num(trace_2_5).tolist()
    noise = np.random.default_rng(3).normal(size=len(text)).tolist()
    ranks = analysis.rank_units(
        model, lay, {"unit": signal, "noise": noise, "flat": [1.0] * len(text)}
    )
    assert "flat" not in ranks  # a constant signal correlates with nothing
    top = ranks["unit"][0]
    assert (top.layer, top.unit) == (2, 5) and top.r == pytest.approx(1.0, abs=1e-6)
    assert len(ranks["unit"]) == 2 * 16
    rs = [abs(x.r) for x in ranks["unit"]]
    assert rs == sorted(rs, reverse=True)
    # every r is numpy's Pearson r over the characters the model read
    used = np.sort(lay.index.reshape(-1))
    for x in ranks["noise"][:5]:
        (a,) = analysis.unit_traces(model, lay, [(x.layer, x.unit)], state="c")
        want = np.corrcoef(a[used], np.asarray(noise)[used])[0, 1]
        assert x.r == pytest.approx(want, abs=1e-6)
        assert x.saturated == pytest.approx(float((np.abs(a[used]) > 0.9).mean()), abs=1e-9)


def test_unit_traces_follow_the_text_and_check_the_unit():
    model, text = _model(), "ab?cd" * 20
    lay = analysis.layout(text, VOCAB)
    values = analysis.unit_traces(model, lay, [(1, 0), (2, 15)], state="h")
    assert values.shape == (2, len(text))
    assert np.isnan(values[:, 2]).all() and np.isfinite(values[:, 0]).all()
    assert np.abs(values[np.isfinite(values)]).max() <= 1.0
    with pytest.raises(UsageError, match="--unit must be 0 to 15"):
        analysis.unit_traces(model, lay, [(1, 16)])
    with pytest.raises(UsageError, match="--layer must be 1 to 2"):
        analysis.unit_traces(model, lay, [(3, 0)])


def test_gate_saturation_is_the_share_of_characters_past_each_threshold():
    model, text = _model("gru", layers=1), _text(400)
    lay = analysis.layout(text, VOCAB)
    stats = {(g.layer, g.gate): g for g in analysis.gate_saturation(model, lay)}
    assert set(stats) == {(1, "reset"), (1, "update")}
    update = torch.cat([w.gates[0]["update"] for w in trace(model, lay.ids, gates=True,
                                                             state="h")], dim=1)  # fmt: skip
    update = update.reshape(-1, 16).numpy()
    np.testing.assert_allclose(stats[1, "update"].low, (update < 0.1).mean(0), atol=1e-9)
    np.testing.assert_allclose(stats[1, "update"].high, (update > 0.9).mean(0), atol=1e-9)
    with pytest.raises(UsageError, match="no gates"):
        analysis.gate_saturation(_model("rnn"), lay)
