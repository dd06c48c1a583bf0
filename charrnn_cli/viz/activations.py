"""Running a CharRNN layer by layer to see inside it: each layer's state at every character,
its gates, and the logits, window by window.

The model's recurrent module is fused (all layers in one call), and an LSTM's fused call returns
the cell state c only at the end. So each layer runs as its own single-layer module of the same
kind with the same weights; its outputs h for all steps give every gate in one batched product
(the gates at step t need only x_t and h_{t-1}), and an LSTM's c follows from the gates by the
elementwise recurrence c_t = f_t * c_{t-1} + i_t * g_t. The top layer's h through the head gives
the same logits as `model(x, h)` (checked in tests/test_activations.py).

The text is read in the eval layout (evaluate.eval_rows streams, EVAL_CHUNK windows, state
carried), so what these windows predict is what `charrnn eval` scores. Every stream starts from
`fresh_state`, the one place that says what a fresh text starts from.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from charrnn_cli.evaluate import EVAL_CHUNK
from charrnn_cli.model import CharRNN

# one layer's state: (h, c) for the LSTM, h otherwise; each (1, R, H)
LayerState = torch.Tensor | tuple[torch.Tensor, torch.Tensor]

GATES = {"lstm": ("input", "forget", "cell", "output"), "gru": ("reset", "update", "new")}
SIGMOID_GATES = {"lstm": ("input", "forget", "output"), "gru": ("reset", "update")}


@dataclass
class Window:
    """What the model did over columns [start, start + t) of the R streams."""

    start: int
    logits: torch.Tensor  # (R, t, V): the prediction for the character after each one
    states: list[torch.Tensor]  # per layer, (R, t, H): tanh(c) (LSTM, state "c") or h
    gates: list[dict[str, torch.Tensor]] = field(default_factory=list)  # per layer, (R, t, H)


def fresh_state(model: CharRNN, rows: int) -> list[LayerState]:
    """The state each of `rows` streams starts from, per layer: what `model(x, None)` starts
    from, which is what `charrnn eval`, sampling and training's restarts start a text from:
    the model's learned start state, or zeros for a zero-start run."""
    from charrnn_cli.sampling.start import start_state

    h = start_state(model, rows)  # (L, R, H), or an (h, c) pair of them
    if isinstance(h, tuple):
        return [(h[0][i : i + 1], h[1][i : i + 1]) for i in range(model.cfg.layers)]
    return [h[i : i + 1] for i in range(model.cfg.layers)]


def split_layers(model: CharRNN) -> list[nn.RNNBase]:
    """One single-layer module per layer of `model.rnn`, holding copies of its weights."""
    rnn = model.rnn
    extra = {"nonlinearity": rnn.nonlinearity} if isinstance(rnn, nn.RNN) else {}
    layers = []
    p = next(model.parameters())
    for k in range(rnn.num_layers):
        width_in = rnn.input_size if k == 0 else rnn.hidden_size
        layer = type(rnn)(width_in, rnn.hidden_size, batch_first=True, bias=rnn.bias, **extra)
        layer.to(device=p.device, dtype=p.dtype)
        with torch.no_grad():
            for name in layer._flat_weights_names:
                getattr(layer, name).copy_(getattr(rnn, name.replace("_l0", f"_l{k}")))
        layer.eval()
        layers.append(layer)
    return layers


def _preactivations(layer: nn.RNNBase, x: torch.Tensor, h_prev: torch.Tensor):
    """Input and recurrent parts of the gates at every step: x (R, t, I), h_prev (R, t, H)
    -> two (R, t, G*H) tensors."""
    gi = x @ layer.weight_ih_l0.T
    gh = h_prev @ layer.weight_hh_l0.T
    if layer.bias:
        gi, gh = gi + layer.bias_ih_l0, gh + layer.bias_hh_l0
    return gi, gh


def _lstm(layer, x, state, want_gates: bool, want_c: bool):
    y, (hn, cn) = layer(x, state)  # y: (R, t, H)
    gates: dict[str, torch.Tensor] = {}
    shown = y
    if want_gates or want_c:
        h_prev = torch.cat([state[0].transpose(0, 1), y[:, :-1]], dim=1)  # (R, t, H)
        gi, gh = _preactivations(layer, x, h_prev)
        i, f, g, o = (gi + gh).chunk(4, dim=-1)
        i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
        gates = {"input": i, "forget": f, "cell": g, "output": o}
        if want_c:
            c, cs = state[1][0], []  # (R, H)
            for t in range(x.shape[1]):  # elementwise only: cheap next to the products above
                c = f[:, t] * c + i[:, t] * g[:, t]
                cs.append(c)
            shown = torch.stack(cs, dim=1).tanh()
    return y, (hn, cn), shown, gates


def _gru(layer, x, state, want_gates: bool):
    y, hn = layer(x, state)
    gates: dict[str, torch.Tensor] = {}
    if want_gates:
        h_prev = torch.cat([state.transpose(0, 1), y[:, :-1]], dim=1)
        gi, gh = _preactivations(layer, x, h_prev)
        ir, iz, i_n = gi.chunk(3, dim=-1)
        hr, hz, h_n = gh.chunk(3, dim=-1)
        r, z = (ir + hr).sigmoid(), (iz + hz).sigmoid()
        gates = {"reset": r, "update": z, "new": (i_n + r * h_n).tanh()}
    return y, hn, y, gates


@torch.inference_mode()
def trace(
    model: CharRNN,
    streams: np.ndarray,
    *,
    state: str = "c",
    gates: bool = False,
    chunk: int = EVAL_CHUNK,
) -> Iterator[Window]:
    """Read (R, N) streams of ids window by window, yielding each layer's state per character
    (tanh(c) for an LSTM with `state="c"`, else h), the gates when asked, and the logits."""
    model.eval()
    cell = model.cfg.cell
    layers = split_layers(model)
    carried = fresh_state(model, streams.shape[0])
    device = next(model.parameters()).device
    for start in range(0, streams.shape[1], chunk):
        ids = torch.from_numpy(np.ascontiguousarray(streams[:, start : start + chunk]))
        x = model.embed(ids.to(device=device, dtype=torch.long))  # (R, t, E)
        states, all_gates = [], []
        for k, layer in enumerate(layers):
            if cell == "lstm":
                x, carried[k], shown, g = _lstm(layer, x, carried[k], gates, state == "c")
            elif cell == "gru":
                x, carried[k], shown, g = _gru(layer, x, carried[k], gates)
            else:
                x, carried[k] = layer(x, carried[k])
                shown, g = x, {}
            states.append(shown)
            all_gates.append(g)
        logits = model.head(model.drop(x))  # (R, t, V); dropout is off in eval mode
        yield Window(start, logits, states, all_gates if gates else [])
