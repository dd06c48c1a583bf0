"""B sampling streams stepped in lockstep, on numpy steppers (CPU) or on the model (a device).

Where a sample starts (`start_state`, `prime`) is start.py's. An engine draws a character per
stream a step (see `draw`), feeds it back with the state it left, and hands the drawn ids over a
chunk of steps at a time, as (T, B) arrays. With `LineEnds` a stream's line ends when it draws
the newline or one character past the budget; the stream is then put back to the line-start
state and logits (what `prime` gave), so every line starts afresh. On a device the ids, the line
lengths and the resets stay on the device: the host waits once per chunk.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from charrnn_cli.model import CharRNN, State
from charrnn_cli.sampling.lanes import Lane, lane_count, run_lanes
from charrnn_cli.sampling.start import Chunk, LineEnds, Start
from charrnn_cli.sampling.steppers import make_stepper
from charrnn_cli.sampling.strategy import Noise, Strategy, mask_numpy, mask_torch

Engine = Literal["auto", "numpy", "torch"]


class _Streams:
    def __init__(
        self,
        model: CharRNN,
        start: Start,
        strategy: Strategy,
        rngs: list[np.random.Generator],
        ends: LineEnds | None = None,
    ) -> None:
        self.model, self.strategy, self.ends, self.batch = model, strategy, ends, len(rngs)
        self._setup(start, rngs)

    def _setup(self, start: Start, rngs: list[np.random.Generator]) -> None:
        raise NotImplementedError


class NumpyStreams(_Streams):
    """The CPU engine: the numpy steppers, B streams a matrix product."""

    def _setup(self, start: Start, rngs: list[np.random.Generator]) -> None:
        B, V = self.batch, start.logits.shape[-1]
        k = lane_count(self.model, B, self.strategy)
        self.lanes: list[Lane] = []
        if k > 1:  # streams split into lanes, a thread each (see lanes.py)
            self.lanes = [self._lane(start, rngs, B * i // k, B * (i + 1) // k) for i in range(k)]
            return
        self.stepper = make_stepper(self.model, start.h, B)
        self.start_logits = start.logits.detach().float().cpu().numpy()  # (1 or B, V)
        self.logits = np.broadcast_to(self.start_logits, (B, V)).copy()
        self.noise = Noise(rngs, V)

    def _lane(self, start: Start, rngs: list[np.random.Generator], lo: int, hi: int) -> Lane:
        """Streams lo..hi as a lane of their own (their rows of a per-stream start)."""

        def rows(t: torch.Tensor) -> torch.Tensor:  # (L, 1 or B, H)
            return t[:, lo:hi] if t.shape[1] > 1 else t

        h = start.h
        part = tuple(rows(t) for t in h) if isinstance(h, tuple) else rows(h)
        logits = start.logits[lo:hi] if start.logits.shape[0] > 1 else start.logits
        return Lane(self.model, Start(logits, part), rngs[lo:hi], strategy=self.strategy,
                    ends=self.ends)  # fmt: skip

    def run(self, steps: int | None = None, chunk: int = 64) -> Iterator[Chunk]:
        """Step `steps` times (forever when None), yielding a chunk every `chunk` steps."""
        if self.batch == 1:  # matrix-vector products: BLAS keeps those on one thread itself
            yield from self._run(steps, chunk)
            return
        if self.lanes:
            done = 0
            while steps is None or done < steps:
                T = chunk if steps is None else min(chunk, steps - done)
                yield run_lanes(self.lanes, T)
                done += T
            return
        # One thread (BLAS, and OpenMP for torch's MKL): a step's products are too small to
        # share, and a second thread that spins while another process holds the other core
        # costs 3-7x the time.
        with threadpool_limits(1):
            yield from self._run(steps, chunk)

    def _run(self, steps: int | None, chunk: int) -> Iterator[Chunk]:
        s, stepper, ends = self.strategy, self.stepper, self.ends
        B = stepper.batch
        inv_t = 0.0 if s.greedy else 1.0 / s.temperature
        scored = np.empty_like(self.logits)
        drawn = np.zeros(B, np.int64)  # characters of the current line, per stream
        done = 0
        while steps is None or done < steps:
            T = chunk if steps is None else min(chunk, steps - done)
            ids_out = np.empty((T, B), np.int64)
            ends_out = np.zeros((T, B), bool) if ends else None
            for t in range(T):
                logits = mask_numpy(self.logits, s) if s.masking else self.logits
                ids = ids_out[t]
                if s.greedy:
                    np.argmax(logits, -1, out=ids)
                else:
                    if inv_t == 1.0:  # x * 1 is x: one pass fewer at the default temperature
                        np.add(logits, self.noise.next(), out=scored)
                    else:
                        np.multiply(logits, inv_t, out=scored)
                        scored += self.noise.next()
                    np.argmax(scored, -1, out=ids)
                self.logits = stepper.step(ids)
                if ends is not None:
                    drawn += 1
                    over = ids == ends.newline
                    over |= drawn > ends.budget
                    if over.any():
                        ends_out[t] = over
                        drawn[over] = 0
                        stepper.restart(over)
                        np.copyto(self.logits, self.start_logits, where=over[:, None])
            done += T
            yield ids_out, ends_out


def _where(rows: torch.Tensor, a: State, b: State) -> State:
    """`a` for the streams where rows (B,) is True, else `b` (states are (L, B, H))."""
    pick = rows[None, :, None]
    if isinstance(b, tuple):
        return tuple(torch.where(pick, x, y) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]
    return torch.where(pick, a, b)


def _rows(h: State, batch: int) -> State:
    """The state with `batch` rows, (L, 1, H) repeated or (L, B, H) as it is."""
    if isinstance(h, tuple):
        return tuple(t.expand(-1, batch, -1).contiguous() for t in h)  # type: ignore[return-value]
    return h.expand(-1, batch, -1).contiguous()


class TorchStreams(_Streams):
    """The device engine: one model call a step for all streams; ids stay on the device."""

    def _setup(self, start: Start, rngs: list[np.random.Generator]) -> None:
        B, V = self.batch, start.logits.shape[-1]
        self.device = start.logits.device
        self.start_h, self.start_logits = start.h, start.logits.float()
        self.h = _rows(start.h, B)
        self.logits = self.start_logits.expand(B, V)
        self.noise = Noise(rngs, V, self.device)

    @torch.inference_mode()
    def run(self, steps: int | None = None, chunk: int = 256) -> Iterator[Chunk]:
        s, ends, B, dev = self.strategy, self.ends, self.batch, self.device
        inv_t = 0.0 if s.greedy else 1.0 / s.temperature
        drawn = torch.zeros(B, dtype=torch.long, device=dev)
        done = 0
        while steps is None or done < steps:
            T = chunk if steps is None else min(chunk, steps - done)
            ids_out = torch.empty((T, B), dtype=torch.long, device=dev)
            ends_out = torch.zeros((T, B), dtype=torch.bool, device=dev)
            for t in range(T):
                logits = mask_torch(self.logits, s) if s.masking else self.logits
                if s.greedy:
                    ids = logits.argmax(-1)
                else:
                    ids = (logits * inv_t + self.noise.next()).argmax(-1)
                ids_out[t] = ids
                out, self.h = self.model(ids[:, None], self.h)  # (B, 1, V)
                self.logits = out[:, -1].float()
                if ends is not None:
                    drawn += 1
                    over = (ids == ends.newline) | (drawn > ends.budget)
                    ends_out[t] = over
                    drawn.masked_fill_(over, 0)
                    self.h = _where(over, self.start_h, self.h)
                    self.logits = torch.where(over[:, None], self.start_logits, self.logits)
            done += T
            yield ids_out.cpu().numpy(), (ends_out.cpu().numpy() if ends else None)


def make_streams(
    model: CharRNN,
    start: Start,
    strategy: Strategy,
    rngs: list[np.random.Generator],
    ends: LineEnds | None = None,
    engine: Engine = "auto",
) -> NumpyStreams | TorchStreams:
    """Streams that start at `start`, one per generator in `rngs`; `auto` runs numpy on the
    CPU and the model on any other device."""
    if engine == "auto":
        engine = "numpy" if start.logits.device.type == "cpu" else "torch"
    kind = NumpyStreams if engine == "numpy" else TorchStreams
    return kind(model, start, strategy, rngs, ends)
