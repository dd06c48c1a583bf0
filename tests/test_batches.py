"""The TBPTT layout: contiguous streams, consecutive windows, disjoint shards, each rank's
share."""

from __future__ import annotations

import numpy as np
import torch

from charrnn_cli.config import TrainConfig
from charrnn_cli.data import batches

CPU = torch.device("cpu")


def test_streams_are_contiguous_rows_viewed_not_copied():
    ids = np.arange(26, dtype=np.uint8)
    rows = batches.streams(ids, 4)
    assert rows.shape == (4, 6) and rows.ids.dtype == np.uint8
    assert np.shares_memory(rows.ids, ids)  # a view: the corpus is never copied whole
    assert rows.ids[1].tolist() == [6, 7, 8, 9, 10, 11]


def test_window_k_plus_one_continues_window_k():
    rows = batches.streams(np.arange(100, dtype=np.uint8), 4)  # rows of 25
    n = batches.steps_per_epoch(rows, 6)
    assert n == 4  # 24 targets need 25 characters
    x0, y0 = batches.window(rows, 0, 6)
    x1, _ = batches.window(rows, 1, 6)
    assert x0.dtype == y0.dtype == torch.int64 and x0[1].tolist() == [25, 26, 27, 28, 29, 30]
    assert torch.equal(y0[:, :-1], x0[:, 1:])  # targets are inputs shifted by one
    assert torch.equal(x1[:, 0], y0[:, -1])  # the next window starts where this one ended
    x_last, y_last = batches.window(rows, n - 1, 6)
    assert x_last.shape == (4, 6) and y_last.shape == (4, 6)


def test_windows_of_a_memory_map_are_its_ids(tmp_path):
    path = tmp_path / "ids.npy"
    np.save(path, (np.arange(10_000) % 251).astype(np.uint8))
    mapped = np.load(path, mmap_mode="r")
    rows = batches.streams(mapped, 8)
    assert isinstance(rows.ids, np.memmap)
    x, y = batches.window(rows, 3, 32)
    expect = np.asarray(mapped[: 8 * 1250]).reshape(8, 1250)[:, 96:129].astype(np.int64)
    assert x.tolist() == expect[:, :-1].tolist() and y.tolist() == expect[:, 1:].tolist()


def test_shards_split_the_streams_between_ranks():
    rows = batches.streams(np.arange(64, dtype=np.uint8), 8)
    a, b = batches.shard(rows, 0, 2), batches.shard(rows, 1, 2)
    assert a.shape == b.shape == (4, 8)
    together = sorted(a.ids[:, 0].tolist() + b.ids[:, 0].tolist())
    assert together == rows.ids[:, 0].tolist()


def test_dealing_gives_each_rank_its_streams_and_its_held_out_rows():
    ids = np.arange(1000) % 7
    cfg = TrainConfig(batch_size=2, seq_len=5, val_fraction=0.1)
    one = batches.deal(ids, 7, TrainConfig(batch_size=4, seq_len=5, val_fraction=0.1), 0, 1, CPU)
    a, b = (batches.deal(ids, 7, cfg, rank, 2, CPU) for rank in (0, 1))
    assert (one.train_chars, one.val_chars) == (900, 100) and one.per_epoch == a.per_epoch
    assert np.array_equal(one.rows.ids[0::2], a.rows.ids)
    assert np.array_equal(one.rows.ids[1::2], b.rows.ids)
    assert len(a.val_rows) + len(b.val_rows) == len(one.val_rows)
    assert one.unigram == np.bincount(ids[:900], minlength=7).tolist() == a.unigram
    counted = batches.deal(ids, 7, cfg, 0, 2, CPU, counts=np.bincount(ids, minlength=7))
    assert counted.unigram == one.unigram  # from the whole text's counts, less the tail's


def test_evaluations_score_a_fixed_piece_from_the_start_of_the_tail():
    ids = (np.arange(9600) % 13).astype(np.uint8)  # a tail of 16 rows x 300
    whole = batches.deal(ids, 13, TrainConfig(val_fraction=0.5, eval_chars=0), 0, 1, CPU)
    piece = batches.deal(ids, 13, TrainConfig(val_fraction=0.5, eval_chars=800), 0, 1, CPU)
    assert whole.val_rows.size == 4800 and piece.val_rows.size == 800
    assert np.array_equal(piece.val_rows.reshape(-1), ids[4800:5600])
    big = batches.deal(ids, 13, TrainConfig(val_fraction=0.5, eval_chars=10**9), 0, 1, CPU)
    assert np.array_equal(big.val_rows, whole.val_rows)  # a cap above the tail: all of it


def test_streams_let_go_of_the_pages_they_have_read_and_only_those(monkeypatch, tmp_path):
    """Over an epoch a mapped row's pages would all stay resident: every RELEASE_BYTES the
    columns read so far are let go, each range once, never past the window being read."""
    path = tmp_path / "ids.npy"
    np.save(path, np.arange(4 * 1000, dtype=np.uint16) % 7)
    ids = np.load(path, mmap_mode="r")
    let_go: list[tuple[int, int]] = []

    def release(view: np.ndarray) -> None:
        assert isinstance(view, np.memmap) and view.flags.c_contiguous
        first = (view.__array_interface__["data"][0] - ids.__array_interface__["data"][0]) // 2
        let_go.append((first, first + len(view)))

    monkeypatch.setattr(batches, "release", release)
    monkeypatch.setattr(batches, "RELEASE_BYTES", 100)  # 50 columns of uint16
    rows = batches.streams(ids, 4)  # (4, 1000)
    for _epoch in range(2):
        for k in range(batches.steps_per_epoch(rows, 10)):
            before = len(let_go)
            x, y = rows.window(k, 10)
            assert x.dtype == torch.int64 and torch.equal(x[:, 1:], y[:, :-1])
            for first, end in let_go[before:]:  # never the window read now, nor past it
                assert end <= first // 1000 * 1000 + k * 10
    per_epoch = [(r * 1000 + a, r * 1000 + a + 50) for a in range(0, 950, 50) for r in range(4)]
    assert sorted(let_go) == sorted(per_epoch * 2)
