"""Streams that come and go: up to `capacity` samples stepped together, each drawn as alone.

The server's continuous batching runs on this. A `Pool` holds one numpy stepper of `capacity`
rows; the streams in use are packed into its first n rows and one `step()` advances them all.
A stream joins (`add`) with the state and logits its prompt left (`start.prime`) and its own
generator, temperature and top-k/p, and leaves (`remove`) between steps; the last row then
moves into its place. Each stream draws exactly as `samples.sample` draws for one stream with
the same generator: Gumbel-max over its own noise, a block of `Noise`'s rows at a time, and
the same masks, so a seeded stream makes the same text whoever steps beside it (up to
floating-point ties between the one-row and the many-row products).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from charrnn_cli.model import CharRNN, State
from charrnn_cli.sampling.start import start_state
from charrnn_cli.sampling.steppers import make_stepper
from charrnn_cli.sampling.strategy import NOISE_VALUES, Strategy, mask_numpy


@dataclass(frozen=True)
class Joiner:
    """A stream about to join: where its prompt left it and how it draws."""

    logits: np.ndarray  # (V,) float32: the logits for its first character
    h: State  # (L, 1, H): the state its prompt left
    rng: np.random.Generator
    strategy: Strategy


class RowNoise:
    """Gumbel noise a row at a time for rows that come and go: each row's values are those
    `strategy.Noise` gives one stream with the same generator (same block size, same math)."""

    def __init__(self, capacity: int, vocab_size: int) -> None:
        self.rows = max(1, NOISE_VALUES // vocab_size)
        self.block = np.empty((capacity, self.rows, vocab_size), np.float32)
        self.at = np.full(capacity, self.rows)  # the next unused row of each block
        self.rngs: list[np.random.Generator | None] = [None] * capacity

    def load(self, row: int, rng: np.random.Generator) -> None:
        self.rngs[row], self.at[row] = rng, self.rows

    def move(self, src: int, dst: int) -> None:
        self.block[dst], self.at[dst] = self.block[src], self.at[src]
        self.rngs[dst] = self.rngs[src]

    def _refill(self, row: int) -> None:
        part = self.block[row]
        self.rngs[row].random(dtype=np.float32, out=part)  # type: ignore[union-attr]
        with np.errstate(divide="ignore"):
            np.log(part, out=part)
            np.negative(part, out=part)
            np.log(part, out=part)
        np.negative(part, out=part)
        self.at[row] = 0

    def next(self, rows: np.ndarray) -> np.ndarray:
        """The next noise row (len(rows), V) of each of `rows`."""
        at = self.at[rows]
        for r in rows[at == self.rows].tolist():
            self._refill(r)
        noise = self.block[rows, self.at[rows]]
        self.at[rows] += 1
        return noise


class Pool:
    """Up to `capacity` streams on one stepper; `n` of them in use, in rows 0..n-1."""

    def __init__(self, model: CharRNN, capacity: int) -> None:
        self.capacity, self.n = capacity, 0
        V = model.cfg.vocab_size
        self.stepper = make_stepper(model, start_state(model), capacity)
        self.logits = np.zeros((capacity, V), np.float32)  # each row's logits for its next draw
        self.scored = np.empty((capacity, V), np.float32)
        self.inv_t = np.ones(capacity, np.float32)  # 1 / temperature (1 for greedy rows)
        self.greedy = np.zeros(capacity, bool)
        self.strategies: list[Strategy] = [Strategy()] * capacity
        self.noise = RowNoise(capacity, V)

    def add(self, joiner: Joiner) -> int:
        """Give the stream the next free row and return it."""
        if self.n == self.capacity:
            raise RuntimeError("the pool is full")
        row, s = self.n, joiner.strategy
        self.stepper.put(row, joiner.h)
        self.logits[row] = joiner.logits
        self.greedy[row] = s.greedy
        self.inv_t[row] = 1.0 if s.greedy else 1.0 / s.temperature
        self.strategies[row] = s
        self.noise.load(row, joiner.rng)
        self.n += 1
        return row

    def remove(self, row: int) -> int | None:
        """Free `row`; the last row moves into it. Returns the row that moved (None if none)."""
        last = self.n - 1
        self.n = last
        if row == last:
            return None
        self.stepper.move(last, row)
        self.logits[row] = self.logits[last]
        self.greedy[row], self.inv_t[row] = self.greedy[last], self.inv_t[last]
        self.strategies[row] = self.strategies[last]
        self.noise.move(last, row)
        return last

    def step(self) -> np.ndarray:
        """Draw a character for each stream in use and feed it; returns the ids (n,). (Read
        `logits[:n]` before to see what they were drawn from, before temperature and masks.)"""
        n = self.n
        logits = self.logits[:n]
        drawn_from = self._masked(logits)
        scored = self.scored[:n]
        np.multiply(drawn_from, self.inv_t[:n, None], out=scored)
        sampling = np.flatnonzero(~self.greedy[:n])
        if len(sampling) == n:
            scored += self.noise.next(sampling)
        elif len(sampling):
            scored[sampling] += self.noise.next(sampling)
        ids = scored.argmax(-1)
        if self.greedy[:n].any():
            greedy = self.greedy[:n]
            ids[greedy] = drawn_from[greedy].argmax(-1)
        self.logits[:n] = self.stepper.step(ids)
        return ids

    def _masked(self, logits: np.ndarray) -> np.ndarray:
        """The logits with each stream's top-k / top-p mask applied (rows grouped by rule)."""
        masking = [r for r in range(self.n) if self.strategies[r].masking]
        if not masking:
            return logits
        out = logits.copy()
        groups: dict[tuple, list[int]] = {}
        for r in masking:
            s = self.strategies[r]
            groups.setdefault((s.temperature, s.top_k, s.top_p), []).append(r)
        for rows in groups.values():
            out[rows] = mask_numpy(logits[rows], self.strategies[rows[0]])
        return out
