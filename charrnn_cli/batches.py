"""The training layout for truncated backpropagation through time (TBPTT).

The training ids are cut into `B` contiguous streams, one row each, and read in consecutive
windows of `T` characters. Window i+1 of a row continues window i of the same row, so the
hidden state left by one window is the right starting state for the next: training carries it
across windows (detached, so gradients stop at the window edge), as char-rnn and
pytorch/examples' word_language_model do. Held-out text is read the same way.

    ids:      a b c d e f g h i j k l m n o p q r s t u v w x ...      (N characters)

    streams (B=4 rows of N//B):        windows of T=3 (x), targets shifted by one (y):
      row 0:  a b c d e f              x0 = [a b c]  y0 = [b c d]   x1 = [d e f] ...
      row 1:  g h i j k l              x0 = [g h i]  y0 = [h i j]   x1 = [j k l] ...
      row 2:  m n o p q r                   ...
      row 3:  s t u v w x
               <-- T --><-- T -->      step k reads columns [kT, kT+T) and [kT+1, kT+T+1)

A data-parallel job splits the B rows between its ranks (each rank a disjoint set of streams),
so every rank still carries its own rows' state correctly: `deal` gives a rank its `Shard`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from charrnn_cli.config import TrainConfig
from charrnn_cli.data import split
from charrnn_cli.evaluate import eval_rows


def streams(ids: np.ndarray, batch_size: int) -> torch.Tensor:
    """(B, N // B) int64 tensor of `batch_size` contiguous rows (the tail that does not fill a
    row is dropped)."""
    per_row = len(ids) // batch_size
    rows = np.ascontiguousarray(ids[: per_row * batch_size]).reshape(batch_size, per_row)
    return torch.from_numpy(rows.astype(np.int64))  # (B, N // B)


def steps_per_epoch(rows: torch.Tensor, seq_len: int) -> int:
    """How many whole windows fit in a row (the last target needs one character more)."""
    return max(0, (rows.shape[1] - 1) // seq_len)


def window(rows: torch.Tensor, k: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Window k: inputs and next-character targets, each (B, T)."""
    start = k * seq_len
    x = rows[:, start : start + seq_len]  # (B, T)
    y = rows[:, start + 1 : start + seq_len + 1]  # (B, T)
    return x, y


def shard(rows: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """This rank's disjoint share of the streams (rows rank, rank+world, ...)."""
    return rows[rank::world]


@dataclass
class Shard:
    """One rank's share of a corpus's ids."""

    rows: torch.Tensor  # (B, N) its training streams, on its device
    val_rows: np.ndarray  # (R, M) the held-out streams it scores
    per_epoch: int  # windows in a pass over the streams
    train_chars: int  # characters of the training text, all ranks'
    val_chars: int  # characters held out, all ranks'
    unigram: list[int]  # training counts of each character id (sampling with no seed text)


def deal(
    ids: np.ndarray, vocab_size: int, cfg: TrainConfig, rank: int, world: int, device: torch.device
) -> Shard:
    """Split off the held-out tail, cut the rest into `batch_size` streams for each of `world`
    ranks and take rank's; the held-out rows are dealt too, unless fewer than the ranks."""
    train_ids, val_ids = split(ids, cfg.val_fraction)
    rows = shard(streams(train_ids, cfg.batch_size * world), rank, world)  # (B, N)
    rows = rows.contiguous().to(device)
    val_rows = eval_rows(val_ids)
    if len(val_rows) >= world:
        val_rows = val_rows[rank::world]
    unigram = np.bincount(train_ids, minlength=vocab_size).tolist()
    per_epoch = steps_per_epoch(rows, cfg.seq_len)
    return Shard(rows, val_rows, per_epoch, len(train_ids), len(val_ids), unigram)


def restart_mask(seed: int, step: int, streams: int, p: float) -> torch.Tensor:
    """(streams,) bool: which streams restart at `step`, a function of the seed and step only."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
    return torch.rand(streams, generator=gen) < p
