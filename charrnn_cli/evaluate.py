"""Scoring text: loss in nats per character, bits per character, perplexity and accuracy.

The text is read as `rows` contiguous streams (the training layout, see batches.py) in windows
of `chunk` characters, with the hidden state carried through, so each character is predicted
from everything before it in its stream. Only one window is widened to int64 at a time, so
memory stays bounded by the uint8/uint16 ids however long the text is. Used for the held-out
split during training and by `charrnn eval`, so both report the same figure.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from charrnn_cli.model import CharRNN, State
from charrnn_cli.store import LN2

EVAL_ROWS = 16  # streams read in parallel; each starts cold, so few keep the bias negligible
EVAL_CHUNK = 256  # characters per forward call


@dataclass
class Score:
    chars: int = 0  # characters predicted
    loss_sum: float = 0.0  # summed cross-entropy, nats
    correct: int = 0  # argmax hits

    @property
    def loss(self) -> float:
        return self.loss_sum / self.chars if self.chars else float("nan")

    @property
    def bits_per_char(self) -> float:
        return self.loss / LN2

    @property
    def perplexity(self) -> float:
        return math.exp(self.loss) if self.chars else float("nan")

    @property
    def accuracy(self) -> float:
        return self.correct / self.chars if self.chars else float("nan")

    def add(self, other: Score) -> None:
        self.chars += other.chars
        self.loss_sum += other.loss_sum
        self.correct += other.correct


def eval_rows(ids: np.ndarray, rows: int = EVAL_ROWS) -> np.ndarray:
    """The text as at most `rows` contiguous streams, each at least 2 characters long."""
    rows = max(1, min(rows, len(ids) // 2))
    per_row = len(ids) // rows
    return ids[: rows * per_row].reshape(rows, per_row)


@torch.inference_mode()
def score(
    model: CharRNN,
    streams: np.ndarray,
    device: torch.device,
    *,
    chunk: int = EVAL_CHUNK,
    autocast: torch.dtype | None = None,
) -> Score:
    """Score (R, N) streams of ids with the state carried through each row."""
    was_training = model.training
    model.eval()
    result = Score()
    h: State | None = None
    n = streams.shape[1]
    ctx = torch.autocast(device.type, dtype=autocast) if autocast else contextlib.nullcontext()
    try:
        for start in range(0, n - 1, chunk):
            end = min(start + chunk, n - 1)
            window = torch.from_numpy(np.ascontiguousarray(streams[:, start : end + 1]))
            window = window.to(device=device, dtype=torch.long, non_blocking=True)
            x, y = window[:, :-1], window[:, 1:]  # (R, t)
            with ctx:
                logits, h = model(x, h)  # (R, t, V)
            logits = logits.float().reshape(-1, logits.shape[-1])
            target = y.reshape(-1)
            loss = F.cross_entropy(logits, target, reduction="sum")
            hits = (logits.argmax(-1) == target).sum()
            result.loss_sum += float(loss)
            result.correct += int(hits)
            result.chars += target.numel()
    finally:
        model.train(was_training)
    return result
