"""CharRNN: embedding -> fused recurrent layers (RNN tanh, GRU or LSTM) -> linear to the vocabulary.

`forward(idx, h=None) -> (logits, h)`: `h=None` starts from the model's start state (learned,
or zeros for `--start-state zero` and runs from before start states; there is no init_hidden
and no LSTM special case for callers); `h` is what the recurrent module returns (a tensor, or an
(h, c) pair for the LSTM) and is fed back for the next window. The recurrent layers are torch's
fused modules, so a GPU runs cuDNN (MIOpen on ROCm) and the CPU runs its batched kernels;
dropout sits between the layers (inside the module) and before the output layer.
"""

from __future__ import annotations

import torch
from torch import nn

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
        x = self.embed(idx)  # (B, T) -> (B, T, E)
        if h is None:
            h = self.start_state(idx.shape[0])
        y, h = self.rnn(x, h)  # (B, T, H); h: (L, B, H) or ((L, B, H), (L, B, H))
        logits = self.head(self.drop(y))  # (B, T, V)
        return logits, h

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


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
