"""The TBPTT layout: contiguous streams, consecutive windows, disjoint shards, each rank's
share."""

from __future__ import annotations

import numpy as np
import torch

from charrnn_cli import batches
from charrnn_cli.config import TrainConfig

CPU = torch.device("cpu")


def test_streams_are_contiguous_rows():
    ids = np.arange(26, dtype=np.uint8)
    rows = batches.streams(ids, 4)
    assert rows.shape == (4, 6) and rows.dtype == torch.int64
    assert rows[1].tolist() == [6, 7, 8, 9, 10, 11]


def test_window_k_plus_one_continues_window_k():
    rows = batches.streams(np.arange(100, dtype=np.uint8), 4)  # rows of 25
    n = batches.steps_per_epoch(rows, 6)
    assert n == 4  # 24 targets need 25 characters
    x0, y0 = batches.window(rows, 0, 6)
    x1, _ = batches.window(rows, 1, 6)
    assert torch.equal(y0[:, :-1], x0[:, 1:])  # targets are inputs shifted by one
    assert torch.equal(x1[:, 0], y0[:, -1])  # the next window starts where this one ended
    x_last, y_last = batches.window(rows, n - 1, 6)
    assert x_last.shape == (4, 6) and y_last.shape == (4, 6)


def test_shards_split_the_streams_between_ranks():
    rows = batches.streams(np.arange(64, dtype=np.uint8), 8)
    a, b = batches.shard(rows, 0, 2), batches.shard(rows, 1, 2)
    assert a.shape == b.shape == (4, 8)
    together = sorted(a[:, 0].tolist() + b[:, 0].tolist())
    assert together == rows[:, 0].tolist()


def test_dealing_gives_each_rank_its_streams_and_its_held_out_rows():
    ids = np.arange(1000) % 7
    cfg = TrainConfig(batch_size=2, seq_len=5, val_fraction=0.1)
    one = batches.deal(ids, 7, TrainConfig(batch_size=4, seq_len=5, val_fraction=0.1), 0, 1, CPU)
    a, b = (batches.deal(ids, 7, cfg, rank, 2, CPU) for rank in (0, 1))
    assert (one.train_chars, one.val_chars) == (900, 100) and one.per_epoch == a.per_epoch
    assert torch.equal(one.rows[0::2], a.rows) and torch.equal(one.rows[1::2], b.rows)
    assert len(a.val_rows) + len(b.val_rows) == len(one.val_rows)
    assert one.unigram == np.bincount(ids[:900], minlength=7).tolist() == a.unigram
