"""Layer-by-layer activations reproduce the fused model: its logits, its final h and c, and the
cell equations step by step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from charrnn_cli.model import CharRNN
from charrnn_cli.viz.activations import fresh_state, split_layers, trace
from tests.helpers import tiny_model


def _model(cell: str, layers: int = 2) -> CharRNN:
    return tiny_model(11, 8, 16, cell=cell, layers=layers)


def _streams(rows: int = 3, n: int = 40) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 11, size=(rows, n)).astype(np.uint8)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("chunk", [7, 256])
def test_trace_reproduces_the_models_logits_across_windows(cell, chunk):
    model, ids = _model(cell), _streams()
    with torch.no_grad():
        want, h = model(torch.from_numpy(ids).long())  # (R, N, V), fused, one call
    windows = list(trace(model, ids, state="h", chunk=chunk))
    got = torch.cat([w.logits for w in windows], dim=1)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    # the top layer's h at the last step is the fused module's final h
    top_h = windows[-1].states[-1][:, -1]
    final_h = h[0] if isinstance(h, tuple) else h
    torch.testing.assert_close(top_h, final_h[-1], atol=1e-5, rtol=1e-5)


def test_lstm_cell_state_matches_the_fused_final_c_and_the_equations():
    model, ids = _model("lstm"), _streams(rows=2, n=30)
    with torch.no_grad():
        _, (_, c_final) = model(torch.from_numpy(ids).long())
    windows = list(trace(model, ids, state="c", chunk=8, gates=True))
    tanh_c = torch.cat([w.states[0] for w in windows], dim=1)  # layer 1, (R, N, H)
    torch.testing.assert_close(tanh_c[:, -1], c_final[0].tanh(), atol=1e-5, rtol=1e-5)
    # step the textbook equations for layer 1 by hand and compare every step
    rnn, x = model.rnn, model.embed(torch.from_numpy(ids).long()).detach()
    h = c = torch.zeros(2, 16)
    for t in range(ids.shape[1]):
        gates = x[:, t] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + h @ rnn.weight_hh_l0.T
        i, f, g, o = (gates + rnn.bias_hh_l0).detach().chunk(4, dim=-1)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        h = o.sigmoid() * c.tanh()
        torch.testing.assert_close(tanh_c[:, t], c.tanh(), atol=1e-5, rtol=1e-5)
    forget = torch.cat([w.gates[1]["forget"] for w in windows], dim=1)
    assert forget.shape == (2, 30, 16) and 0 < float(forget.min()) <= float(forget.max()) < 1


def test_gru_gates_give_back_its_outputs():
    model, ids = _model("gru", layers=1), _streams(rows=2, n=20)
    (w,) = trace(model, ids, state="h", gates=True)
    z, n, h = w.gates[0]["update"], w.gates[0]["new"], w.states[0]
    h_prev = torch.cat([torch.zeros(2, 1, 16), h[:, :-1]], dim=1)
    torch.testing.assert_close(h, (1 - z) * n + z * h_prev, atol=1e-5, rtol=1e-5)


def test_split_layers_copy_weights_and_fresh_state_is_what_the_model_starts_from():
    model = _model("lstm")
    layers = split_layers(model)
    assert len(layers) == 2 and all(m.num_layers == 1 for m in layers)
    torch.testing.assert_close(layers[1].weight_hh_l0, model.rnn.weight_hh_l1)
    start = fresh_state(model, rows=3)
    ids = torch.from_numpy(_streams()).long()
    h0 = torch.cat([s[0] for s in start]), torch.cat([s[1] for s in start])
    with torch.no_grad():
        torch.testing.assert_close(model(ids, h0)[0], model(ids)[0])
