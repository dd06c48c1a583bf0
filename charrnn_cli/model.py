"""CharRNN: embedding -> fused recurrent layers (RNN tanh, GRU or LSTM) -> linear to the vocabulary.

`forward(idx, h=None) -> (logits, h)`: `h=None` starts from the model's start state (learned,
or zeros for `--start-state zero` and runs from before start states; there is no init_hidden
and no LSTM special case for callers); `h` is what the recurrent module returns (a tensor, or an
(h, c) pair for the LSTM) and is fed back for the next window. The recurrent layers are torch's
fused modules, so a GPU runs cuDNN (MIOpen on ROCm) and the CPU runs its batched kernels;
dropout sits between the layers (inside the module) and before the output layer.

The AWD-LSTM regularisers (Merity et al. 2017) act in training mode only, each in addition to
`dropout`:
weight drop (DropConnect on each layer's hidden-to-hidden weights, the module's own weights
dropped and handed to the same fused kernel), locked dropout (one mask per window, shared by
its time steps, between layers and before the output layer) and embedding dropout (whole
characters' rows). In eval mode, and in training with all three at 0, `forward` runs the
plain module, so sampling, scoring and every export see the same model as before.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from charrnn_cli.config import Cell, ModelConfig

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]

# For each of config.CELLS: torch's fused module, and its gates (weight blocks per layer)
FUSED: dict[Cell, tuple[type[nn.RNNBase], int]] = {
    "lstm": (nn.LSTM, 4),
    "gru": (nn.GRU, 3),
    "rnn": (nn.RNN, 1),
}


class CharRNN(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_size)
        self.rnn = FUSED[cfg.cell][0](
            cfg.embed_size,
            cfg.hidden_size,
            num_layers=cfg.layers,
            dropout=cfg.dropout if cfg.layers > 1 else 0.0,
            batch_first=True,
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden_size, cfg.vocab_size)
        if cfg.tie_weights:
            self.head.weight = self.embed.weight
        self.start: nn.Parameter | None = None
        if cfg.start_state == "learned":
            # h (and the LSTM's c) of every layer, for one stream: (S, L, 1, H), S = 1 or 2
            parts = 2 if cfg.cell == "lstm" else 1
            self.start = nn.Parameter(torch.zeros(parts, cfg.layers, 1, cfg.hidden_size))

    def start_state(self, batch: int) -> State | None:
        """The state every fresh text starts from, for `batch` streams; None means zeros
        (torch's fused layers take None as zeros without allocating them)."""
        if self.start is None:
            return None
        s = self.start.expand(-1, -1, batch, -1)  # (S, L, B, H), a view: no copy
        return (s[0], s[1]) if self.cfg.cell == "lstm" else s[0]

    def restart(self, h: State | None, mask: torch.Tensor) -> State | None:
        """Streams where `mask` (B,) is true go back to the start state; the others keep `h`.

        Training calls this at every window so that the model keeps learning to begin from
        the start state (the state sampling and evaluation begin from), not only at epoch
        starts. A learned start state takes part in every call, even when no stream restarts,
        so that data-parallel training sees it used (and reduced) at every step."""
        if h is None:
            return None
        pair = isinstance(h, tuple)
        hs = h if isinstance(h, tuple) else (h,)
        if self.start is None and not bool(mask.any()):
            return h
        start = self.start_state(mask.shape[0])
        starts = (start if isinstance(start, tuple) else (start,)) if start is not None else None
        m = mask.view(1, -1, 1)  # (1, B, 1) against (L, B, H)
        out = tuple(
            torch.where(m, starts[i] if starts is not None else torch.zeros_like(t), t)
            for i, t in enumerate(hs)
        )
        return (out[0], out[1]) if pair else out[0]

    def forward(self, idx: torch.Tensor, h: State | None = None) -> tuple[torch.Tensor, State]:
        if h is None:
            h = self.start_state(idx.shape[0])
        cfg = self.cfg
        if not self.training or not (cfg.weight_drop or cfg.locked_dropout or cfg.embed_dropout):
            x = self.embed(idx)  # (B, T) -> (B, T, E)
            y, h = self.rnn(x, h)  # (B, T, H); h: (L, B, H) or ((L, B, H), (L, B, H))
            return self.head(self.drop(y)), h  # (B, T, V)
        x = self.embed(idx) if not cfg.embed_dropout else embed_dropped(self.embed, idx, cfg)
        y, h = recur_dropped(self.rnn, cfg, x, h)
        return self.head(locked(self.drop(y), cfg.locked_dropout)), h

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The state dict of `CharRNN(cfg)`: each tensor's name and shape, by arithmetic (a tied
    head.weight is listed, as state_dict lists it). Building the model on the meta device would
    tell the same, but its initialisers import torch._dynamo: a second of every start-up."""
    gates, hidden = FUSED[cfg.cell][1] * cfg.hidden_size, cfg.hidden_size
    out: dict[str, tuple[int, ...]] = {}
    if cfg.start_state == "learned":  # the model's own parameter: listed before its modules'
        out["start"] = (2 if cfg.cell == "lstm" else 1, cfg.layers, 1, hidden)
    out["embed.weight"] = (cfg.vocab_size, cfg.embed_size)
    for k in range(cfg.layers):
        out[f"rnn.weight_ih_l{k}"] = (gates, cfg.embed_size if k == 0 else hidden)
        out[f"rnn.weight_hh_l{k}"] = (gates, hidden)
        out[f"rnn.bias_ih_l{k}"] = (gates,)
        out[f"rnn.bias_hh_l{k}"] = (gates,)
    out["head.weight"] = (cfg.vocab_size, hidden)
    out["head.bias"] = (cfg.vocab_size,)
    return out


def parameter_count(cfg: ModelConfig) -> int:
    """`CharRNN(cfg).num_parameters()` without building it (a tied head's weight counts once)."""
    tied = {"head.weight"} if cfg.tie_weights else set()
    return sum(math.prod(shape) for name, shape in shapes(cfg).items() if name not in tied)


def locked(x: torch.Tensor, p: float) -> torch.Tensor:
    """Locked (variational) dropout of (B, T, D): one mask per stream, the same at every step."""
    if not p:
        return x
    mask = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(1 - p) / (1 - p)
    return x * mask


def embed_dropped(embed: nn.Embedding, idx: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    """Embedding dropout: whole characters' rows are zeroed for this window, the rest scaled."""
    p = cfg.embed_dropout
    w = embed.weight
    mask = w.new_empty(w.shape[0], 1).bernoulli_(1 - p) / (1 - p)
    return F.embedding(idx, w * mask)


def recur_dropped(
    rnn: nn.RNNBase, cfg: ModelConfig, x: torch.Tensor, h: State | None
) -> tuple[torch.Tensor, State]:
    """The fused layers on the module's own weights, hidden-to-hidden ones dropped (weight
    drop: one mask per window for the whole batch), with locked dropout between the layers.
    The same fused kernels as `rnn(x, h)` (torch.lstm/gru/rnn_tanh over a list of weights)."""
    layers = []
    for k in range(cfg.layers):
        w_hh = getattr(rnn, f"weight_hh_l{k}")
        if cfg.weight_drop:
            w_hh = F.dropout(w_hh, cfg.weight_drop, training=True)
        names = (f"weight_ih_l{k}", None, f"bias_ih_l{k}", f"bias_hh_l{k}")
        layers.append([w_hh if n is None else getattr(rnn, n) for n in names])
    batch, pair = x.shape[0], cfg.cell == "lstm"
    if h is None:
        zeros = x.new_zeros(cfg.layers, batch, cfg.hidden_size)
        h = (zeros, zeros) if pair else zeros
    hs = h if isinstance(h, tuple) else (h,)
    group = 1 if cfg.locked_dropout else cfg.layers  # a layer at a time only to drop between
    outs: list[tuple[torch.Tensor, ...]] = []
    for k in range(0, cfg.layers, group):
        if k:  # between layers: the module's own dropout, then the locked mask
            x = locked(F.dropout(x, rnn.dropout, training=True), cfg.locked_dropout)
        flat = [w for layer in layers[k : k + group] for w in layer]
        part = tuple(t[k : k + group] for t in hs)
        x, *state = _fused(cfg.cell, x, part, flat, group, rnn.dropout)
        outs.append(tuple(state))
    final = tuple(torch.cat(ts) for ts in zip(*outs, strict=True))
    return x, ((final[0], final[1]) if pair else final[0])


def _fused(cell: Cell, x: torch.Tensor, h: tuple, flat: list, layers: int, p: float) -> tuple:
    """torch's fused kernel of `cell` (batch first, training): (y, h) or (y, h, c)."""
    if cell == "lstm":
        return torch.lstm(x, h, flat, True, layers, p, True, False, True)
    fn = torch.gru if cell == "gru" else torch.rnn_tanh
    return fn(x, h[0], flat, True, layers, p, True, False, True)


def detach(h: State | None) -> State | None:
    """Cut the graph at a window edge, keeping the values."""
    if h is None:
        return None
    if isinstance(h, tuple):
        return tuple(t.detach() for t in h)  # type: ignore[return-value]
    return h.detach()


def flops_per_char(cfg: ModelConfig) -> int:
    """Multiply-adds x2 of one forward step for one character (embedding lookup is free)."""
    gates = FUSED[cfg.cell][1]
    macs = 0
    for layer in range(cfg.layers):
        width_in = cfg.embed_size if layer == 0 else cfg.hidden_size
        macs += gates * cfg.hidden_size * (width_in + cfg.hidden_size)
    macs += cfg.hidden_size * cfg.vocab_size
    return 2 * macs
