"""Our faithful PyTorch port of the Lux.jl tutorial, the reference every figure is set beside.

As the tutorial does it: one-hot float inputs, two `nn.LSTMCell`s stepped in a Python loop,
a linear layer to the vocabulary, the state reset to zero every batch, the text cut into
`batch` contiguous chunks whose windows are visited in a shuffled order, Adam at lr 1e-2 and
no gradient clipping. Its sampler here carries the state (the tutorial's did not), so its
speed is the fair "one character per Python step" reference.
"""

from __future__ import annotations

import math
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class TutorialLSTM(nn.Module):
    def __init__(self, vocab: int, hidden: int = 128, layers: int = 2) -> None:
        super().__init__()
        self.V, self.H = vocab, hidden
        self.cells = nn.ModuleList(
            [nn.LSTMCell(vocab if i == 0 else hidden, hidden) for i in range(layers)]
        )
        self.out = nn.Linear(hidden, vocab)

    def zero_state(self, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(torch.zeros(batch, self.H), torch.zeros(batch, self.H)) for _ in self.cells]

    def forward(self, idx: torch.Tensor, state: list) -> tuple[torch.Tensor, list]:
        x = F.one_hot(idx, self.V).float()  # (B, T, V)
        outs = []
        for t in range(x.shape[1]):
            inp = x[:, t]
            for i, cell in enumerate(self.cells):
                h, c = cell(inp, state[i])
                state[i] = (h, c)
                inp = h
            outs.append(inp)
        return self.out(torch.stack(outs, 1)), state


def split(ids: np.ndarray, val_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    n_val = int(len(ids) * val_fraction)
    return ids[:-n_val], ids[-n_val:]


def train(
    ids: np.ndarray, vocab: int, seconds: float, batch: int = 32, seq: int = 32, seed: int = 0
) -> tuple[TutorialLSTM, dict]:
    """Train for `seconds` of wall time; returns the model and its throughput figures."""
    torch.manual_seed(seed)
    model = TutorialLSTM(vocab)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    per = len(ids) // batch
    rows = torch.from_numpy(ids[: per * batch].astype(np.int64)).view(batch, per)
    n = (per - 1) // seq
    order = torch.randperm(n)
    pos, steps, rates = 0, 0, []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        if pos == n:
            order, pos = torch.randperm(n), 0
        k = int(order[pos])
        pos += 1
        t0 = time.perf_counter()
        x, y = rows[:, k * seq : (k + 1) * seq], rows[:, k * seq + 1 : (k + 1) * seq + 1]
        logits, _ = model(x, model.zero_state(batch))  # the tutorial resets every batch
        loss = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        rates.append(batch * seq / (time.perf_counter() - t0))
        steps += 1
    rates = rates[len(rates) // 10 :] or rates
    return model, {"steps": steps, "chars_per_sec": statistics.median(rates)}


@torch.inference_mode()
def evaluate(model: TutorialLSTM, ids: np.ndarray, rows: int = 16, chunk: int = 256) -> float:
    """Held-out loss (nats/char) with the state carried through `rows` streams, as charrnn does."""
    per = len(ids) // rows
    data = torch.from_numpy(ids[: per * rows].astype(np.int64)).view(rows, per)
    state, total, count = model.zero_state(rows), 0.0, 0
    for s in range(0, per - 1, chunk):
        e = min(s + chunk, per - 1)
        logits, state = model(data[:, s:e], state)
        total += float(
            F.cross_entropy(
                logits.reshape(-1, model.V), data[:, s + 1 : e + 1].reshape(-1), reduction="sum"
            )
        )
        count += (e - s) * rows
    return total / count


@torch.inference_mode()
def sample_speed(model: TutorialLSTM, n: int = 2000, repeats: int = 3) -> float:
    """Characters per second, one Python step of the cells per character, state carried."""
    rates = []
    for r in range(repeats):
        gen = torch.Generator().manual_seed(r)
        state, cur = model.zero_state(1), torch.zeros(1, 1, dtype=torch.long)
        t0 = time.perf_counter()
        for _ in range(n):
            logits, state = model(cur, state)
            p = torch.softmax(logits[0, -1], -1)
            cur = torch.multinomial(p, 1, generator=gen).view(1, 1)
            int(cur)
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


LN2 = math.log(2)
