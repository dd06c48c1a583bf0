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
The rows are views into the ids (a memory map of the encoding cache): a step copies only its
window, so a corpus of any size costs the pages the windows touch, on every rank alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from charrnn_cli.config import TrainConfig
from charrnn_cli.data.idmaps import count_ids, release
from charrnn_cli.data.split import split
from charrnn_cli.evaluate import eval_rows

CPU = torch.device("cpu")
RELEASE_BYTES = 1 << 20  # read of each row between lettings-go: B streams keep B MB resident


@dataclass
class Streams:
    """`B` contiguous rows of ids: a view into the (memory-mapped) ids, never a copy. Each
    window is copied on its own, widened to int64 and sent to the device (pinned and
    non-blocking on a GPU), so memory holds a window, not the text."""

    ids: np.ndarray  # (B, N) a view, in the ids' own dtype
    device: torch.device = CPU
    read_to: int = 0  # columns before this were read and their pages let go

    @property
    def shape(self) -> tuple[int, int]:
        return self.ids.shape

    def window(self, k: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Window k: inputs and next-character targets, each (B, T), on the device."""
        start = k * seq_len
        self._let_go(start)
        part = torch.from_numpy(self.ids[:, start : start + seq_len + 1].astype(np.int64))
        if self.device.type == "cuda":
            part = part.pin_memory().to(self.device, non_blocking=True)
        elif self.device.type != "cpu":
            part = part.to(self.device)
        return part[:, :-1], part[:, 1:]  # (B, T) each

    def _let_go(self, start: int) -> None:
        """The pages a mapped row has moved past stay in this process's resident set until
        let go: over an epoch of a 1 GB corpus that is the whole file, counted as the trainer's
        memory. Let them go every RELEASE_BYTES of each row (they stay in the page cache)."""
        if start < self.read_to:  # a new epoch
            self.read_to = 0
        if (start - self.read_to) * self.ids.itemsize < RELEASE_BYTES:
            return
        for row in self.ids:
            release(row[self.read_to : start])
        self.read_to = start


def streams(ids: np.ndarray, batch_size: int, device: torch.device = CPU) -> Streams:
    """`batch_size` contiguous rows of N // B ids (the tail that does not fill a row is
    dropped), as a view."""
    per_row = len(ids) // batch_size
    return Streams(ids[: per_row * batch_size].reshape(batch_size, per_row), device)


def steps_per_epoch(rows: Streams, seq_len: int) -> int:
    """How many whole windows fit in a row (the last target needs one character more)."""
    return max(0, (rows.shape[1] - 1) // seq_len)


def window(rows: Streams, k: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Window k: inputs and next-character targets, each (B, T)."""
    return rows.window(k, seq_len)


def shard(rows: Streams, rank: int, world: int) -> Streams:
    """This rank's disjoint share of the streams (rows rank, rank+world, ...)."""
    return Streams(rows.ids[rank::world], rows.device)


@dataclass
class Shard:
    """One rank's share of a corpus's ids."""

    rows: Streams  # (B, N) its training streams
    val_rows: np.ndarray  # (R, M) the held-out streams it scores: a fixed piece of the tail
    per_epoch: int  # windows in a pass over the streams
    train_chars: int  # characters of the training text, all ranks'
    val_chars: int  # characters held out, all ranks'
    unigram: list[int]  # training counts of each character id (sampling with no seed text)


def deal(
    ids: np.ndarray,
    vocab_size: int,
    cfg: TrainConfig,
    rank: int,
    world: int,
    device: torch.device,
    counts: np.ndarray | None = None,
) -> Shard:
    """Split off the held-out tail, cut the rest into `batch_size` streams for each of `world`
    ranks and take rank's; the held-out piece that evaluations score (the first
    `cfg.eval_chars` of the tail) is dealt too, unless it has fewer rows than the ranks.
    `counts` (of each id in all of `ids`) spares counting the training text."""
    train_ids, val_ids = split(ids, cfg.val_fraction)
    rows = shard(streams(train_ids, cfg.batch_size * world, device), rank, world)  # (B, N)
    val_rows = eval_rows(val_ids[: cfg.eval_chars or None])
    if len(val_rows) >= world:
        val_rows = val_rows[rank::world]
    if counts is None:
        unigram = count_ids(train_ids, vocab_size)
    else:  # the tail is a few % of the text: count it, not the rest
        unigram = counts - count_ids(val_ids, vocab_size)
    per_epoch = steps_per_epoch(rows, cfg.seq_len)
    return Shard(rows, val_rows, per_epoch, len(train_ids), len(val_ids), unigram.tolist())


def restart_mask(seed: int, step: int, streams: int, p: float) -> torch.Tensor:
    """(streams,) bool: which streams restart at `step`, a function of the seed and step only.

    The generator's seed is `seed * 1_000_003 + step` taken modulo 2**64 (what a generator
    takes): the same draws as ever below that, and every --random-seed up to 2**63-1 works
    (the multiplier is odd, so distinct seeds still get distinct generators at a step)."""
    gen = torch.Generator().manual_seed((seed * 1_000_003 + step) % 2**64)
    return torch.rand(streams, generator=gen) < p
