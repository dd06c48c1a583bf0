"""Drawing the next character: the strategy, the noise, and top-k / top-p masks.

Every engine draws the same way, so a `--random-seed` gives the same text on every device (up to
floating-point ties): the Gumbel-max trick, argmax(logits / T + G) with G Gumbel noise, which
draws exactly from softmax(logits / T). The noise is drawn on the host by numpy, one generator
per stream, in blocks of rows (a GPU engine copies a block to the device once per block). A
stream's noise is the sequence its generator makes, whatever the block size or the number of
streams beside it. Top-k and top-p set the logits they exclude to -inf first, with one numpy
and one torch version of the same rule, so masking on a GPU never leaves the device.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from charrnn_cli.sampling.request import MIN_TEMPERATURE

NOISE_VALUES = 1 << 14  # noise values per stream and block (rows x vocabulary)
AHEAD_STREAMS = 8  # from this many streams, the next block is drawn on a worker thread


@dataclass
class Strategy:
    temperature: float = 1.0  # 0 means greedy
    top_k: int | None = None  # keep only the k most likely characters
    top_p: float | None = None  # keep the smallest set whose probability reaches p

    def __post_init__(self) -> None:
        if self.temperature < MIN_TEMPERATURE:  # greedy: 1 / T would overflow float32
            self.temperature = 0.0

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @property
    def masking(self) -> bool:
        return self.top_k is not None or self.top_p is not None


def stream_rngs(random_seed: int | None, count: int) -> list[np.random.Generator]:
    """`count` independent generators for as many streams, the same ones for the same seed."""
    seeds = np.random.SeedSequence(random_seed).spawn(count)
    return [np.random.default_rng(s) for s in seeds]


class Noise:
    """Gumbel noise for streams that step in lockstep: `next()` is (B, V), a row per stream, a
    numpy array, or a tensor on `device` when one is given (copied there a block at a time).

    With AHEAD_STREAMS streams or more, the next block is drawn on a worker thread while the
    streams step through this one (numpy's generators and logs release the GIL): drawing is
    a twentieth of a 64-stream step, and the megabytes it writes no longer push the weights
    out of the stepping core's cache. Each generator still draws its blocks in order, so the
    noise is the same."""

    def __init__(
        self,
        rngs: list[np.random.Generator],
        vocab_size: int,
        device: torch.device | None = None,
        ahead: bool = True,
    ) -> None:
        self.rngs, self.device = rngs, device
        self.rows = max(1, NOISE_VALUES // vocab_size)
        self.block = np.empty((len(rngs), self.rows, vocab_size), np.float32)  # (B, rows, V)
        ahead = ahead and len(rngs) >= AHEAD_STREAMS
        self.spare = np.empty_like(self.block) if ahead else None
        self.pending: Future | None = None  # the spare block being drawn
        self.on_device: torch.Tensor | None = None
        self.row = self.rows

    def _draw(self, block: np.ndarray) -> None:
        """-log(-log(U)) into `block`, U uniform in [0, 1) (float32; a U of exactly 0, one
        value in 2**24, gives -inf: that character is not drawn)."""
        with np.errstate(divide="ignore"):
            for rng, part in zip(self.rngs, block, strict=True):  # a stream's part stays in cache
                rng.random(dtype=np.float32, out=part)
                np.log(part, out=part)
                np.negative(part, out=part)
                np.log(part, out=part)
                np.negative(part, out=part)

    def refill(self) -> np.ndarray:
        """Make the next block (B, rows, V) current; start drawing the one after it."""
        if self.pending is not None:
            self.pending.result()
            self.block, self.spare = self.spare, self.block
        else:
            self._draw(self.block)
        if self.spare is not None:
            self.pending = _worker().submit(self._draw, self.spare)
        if self.device is not None:
            self.on_device = torch.from_numpy(self.block).to(self.device)
        self.row = 0
        return self.block

    def next(self) -> np.ndarray | torch.Tensor:
        if self.row == self.rows:
            self.refill()
        block = self.block if self.on_device is None else self.on_device
        row = block[:, self.row]
        self.row += 1
        return row


_WORKER: list[ThreadPoolExecutor] = []


def _worker() -> ThreadPoolExecutor:
    """The one thread that draws blocks ahead, for every `Noise` of the process."""
    if not _WORKER:
        _WORKER.append(ThreadPoolExecutor(1, thread_name_prefix="charrnn-noise"))
    return _WORKER[0]


def mask_numpy(logits: np.ndarray, s: Strategy) -> np.ndarray:
    """Logits (B, V) with what top-k / top-p exclude set to -inf (a new array when masking)."""
    V = logits.shape[-1]
    if s.top_k is not None and s.top_k < V:
        cut = np.partition(logits, V - s.top_k, axis=-1)[:, V - s.top_k, None]  # (B, 1)
        logits = np.where(logits < cut, np.float32(-np.inf), logits)
    if s.top_p is not None and s.top_p < 1.0:
        order = np.argsort(-logits, axis=-1, kind="stable")  # (B, V), likeliest first
        ranked = np.take_along_axis(logits, order, -1)
        z = ranked / np.float32(max(s.temperature, 1e-6))
        p = np.exp(z - z[:, :1])
        p /= p.sum(-1, keepdims=True)
        keep = (np.cumsum(p, -1) < s.top_p).sum(-1, keepdims=True) + 1  # (B, 1)
        ranked = np.where(np.arange(V) < keep, ranked, np.float32(-np.inf))
        logits = np.empty_like(logits)
        np.put_along_axis(logits, order, ranked, -1)
    return logits


def mask_torch(logits: torch.Tensor, s: Strategy) -> torch.Tensor:
    """The same rule as `mask_numpy`, on the logits' device."""
    V = logits.shape[-1]
    if s.top_k is not None and s.top_k < V:
        cut = torch.topk(logits, s.top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < cut, float("-inf"))
    if s.top_p is not None and s.top_p < 1.0:
        ranked, order = torch.sort(logits, dim=-1, descending=True, stable=True)
        p = torch.softmax(ranked / max(s.temperature, 1e-6), dim=-1)
        keep = (torch.cumsum(p, -1) < s.top_p).sum(-1, keepdim=True) + 1  # (B, 1)
        ranks = torch.arange(V, device=logits.device)
        ranked = ranked.masked_fill(ranks >= keep, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, ranked)
    return logits
