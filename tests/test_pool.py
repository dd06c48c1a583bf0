"""The pool of streams that come and go: each stream's text is what `sample` makes alone with
the same generator and strategy, whenever it joins and whoever steps beside it; the steppers
step a prefix of their rows, take a row's state and move rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from charrnn_cli.config import ModelConfig
from charrnn_cli.model import CharRNN
from charrnn_cli.sampling.pool import Joiner, Pool
from charrnn_cli.sampling.samples import sample
from charrnn_cli.sampling.start import prime, start_state
from charrnn_cli.sampling.steppers import make_stepper
from charrnn_cli.sampling.strategy import Strategy

VOCAB = "abcdefg"
TOL = dict(rtol=1e-5, atol=1e-5)


def _model(cell: str) -> CharRNN:
    torch.manual_seed(0)
    cfg = ModelConfig(cell=cell, vocab_size=7, embed_size=5, hidden_size=12, layers=2)
    return CharRNN(cfg).eval()


def _joiner(m: CharRNN, prompt: list[int], seed: int, s: Strategy) -> Joiner:
    with torch.inference_mode():
        start = prime(m, torch.tensor([prompt]))
    return Joiner(start.logits[0].numpy(), start.h, np.random.default_rng(seed), s)


# (prompt, seed, strategy, joins at step, length)
STREAMS = [
    ([1, 2, 3], 5, Strategy(0.9), 0, 40),
    ([4], 6, Strategy(0.0), 2, 25),
    ([0, 6], 7, Strategy(1.3, top_k=3), 3, 50),
    ([2, 2], 8, Strategy(0.7, top_p=0.8), 7, 12),
    ([5], 9, Strategy(1.0), 7, 60),
]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_each_stream_is_what_sample_makes_alone(cell):
    m = _model(cell)
    alone = ["".join(sample(m, VOCAB, p, n, s, random_seed=seed)) for p, seed, s, _, n in STREAMS]
    pool = Pool(m, capacity=4)
    made: dict[int, list[str]] = {}
    row_of: dict[int, int] = {}  # stream -> row
    waiting, step = list(range(len(STREAMS))), 0
    while waiting or row_of:
        for k in [k for k in waiting if STREAMS[k][3] <= step]:
            if pool.n == pool.capacity:  # waits for a free row
                break
            p, seed, s, _, _ = STREAMS[k]
            row_of[k] = pool.add(_joiner(m, p, seed, s))
            made[k], waiting = [], [w for w in waiting if w != k]
        if pool.n:
            ids = pool.step().tolist()
            for k, row in row_of.items():
                made[k].append(VOCAB[ids[row]])
        for k in [k for k in row_of if len(made[k]) == STREAMS[k][4]]:
            row = row_of.pop(k)
            moved = pool.remove(row)
            if moved is not None:  # the last row's stream now steps in the freed row
                row_of[next(j for j, r in row_of.items() if r == moved)] = row
        step += 1
    assert ["".join(made[k]) for k in range(len(STREAMS))] == alone


def test_a_stepper_steps_a_prefix_takes_a_row_and_moves_one():
    m = _model("lstm")
    with torch.inference_mode():
        _, h = m(torch.tensor([[1, 2], [3, 4], [5, 6]]), start_state(m, 3))
    rows = [tuple(t[:, b : b + 1] for t in h) for b in range(3)]
    full = make_stepper(m, h, 3)
    want = full.step(np.array([0, 1, 2])).copy()
    pool = make_stepper(m, start_state(m), 4)
    pool.put(2, rows[0])
    pool.put(1, rows[1])
    pool.move(2, 0)  # row 0 now holds stream 0
    pool.put(2, rows[2])
    got = pool.step(np.array([0, 1, 2]))
    assert got.shape == (3, 7)
    np.testing.assert_allclose(got, want, **TOL)
    one = make_stepper(m, rows[0])  # one row left: stream 0, on the one-stream path
    one.step(np.array([0]))
    np.testing.assert_allclose(pool.step(np.array([3]))[0], one.step(np.array([3]))[0], **TOL)
