"""The TBPTT layout: contiguous streams, consecutive windows, disjoint shards."""

from __future__ import annotations

import numpy as np
import torch

from charrnn_cli import batches


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
