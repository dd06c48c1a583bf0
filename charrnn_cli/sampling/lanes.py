"""Many LSTM streams stepped on every core: the streams split into lanes, a thread each.

A 64-stream step of the default LSTM is two thirds matrix products, and those already run at
one core's fp32 peak, so the rest of the speed is on the other cores. Python threads share one
interpreter lock, and a step is ~30 small operations, so a lane runs its steps inside one
TorchScript call (`_lstm_steps`), which does not hold the lock: the draw (logits + Gumbel
noise, argmax), each layer and the output layer, with the same torch operations on the same
buffers (an `LstmStepper` per lane) as `LstmStepper.step`. Each stream keeps its own noise
generator, so it draws from the same noise in any lane; only the rounding of a product may
differ with the lane's row count, as it may between engines.

Lanes need `LANE_STREAMS` streams or more each and a CPU free for each: a lane that shares a
core with another just takes turns with it (a thread waits on a lock, it does not spin).
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from threadpoolctl import ThreadpoolController

from charrnn_cli.model import CharRNN
from charrnn_cli.sampling.steppers import LstmStepper
from charrnn_cli.sampling.strategy import Noise, Strategy

if TYPE_CHECKING:
    from charrnn_cli.sampling.start import Chunk, LineEnds, Start

LANE_STREAMS = 16  # the fewest streams a lane steps: below that a thread costs more than it saves


def lane_count(model: CharRNN, batch: int, strategy: Strategy) -> int:
    """How many lanes `batch` streams step in: 1 (no threads) unless the model is an LSTM,
    no top-k/top-p mask is drawn (those stay on the numpy path), and there are CPUs for more."""
    if model.cfg.cell != "lstm" or strategy.masking or strategy.greedy:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lanes = max(1, min(cpus or 1, batch // LANE_STREAMS))
    return lanes if lanes > 1 and _scripted() is not None else 1


_SCRIPTED: list[Any] = []


def _scripted() -> Any:
    """`_lstm_steps` compiled by TorchScript, once a process (~0.1 s, when lanes are first
    used), or None where this torch cannot (then streams step in one lane)."""
    if not _SCRIPTED:
        try:
            with warnings.catch_warnings():  # torch 2.9+ marks TorchScript deprecated
                warnings.simplefilter("ignore", DeprecationWarning)
                _SCRIPTED.append(torch.jit.script(_lstm_steps))
        except Exception:  # noqa: BLE001 - any failure to compile means: no lanes
            _SCRIPTED.append(None)
    return _SCRIPTED[0]


def _lstm_steps(
    ids_out: torch.Tensor,  # (T, b) int64: the characters drawn
    ends_out: torch.Tensor,  # (T, b) bool: where a line ended (with line ends)
    noise: torch.Tensor,  # (b, R, V) a block of Gumbel noise; rows [row, row + T) are used
    row: int,
    inv_t: float,
    logits: torch.Tensor,  # (b, V) the next character's logits, updated in place
    scored: torch.Tensor,  # (b, V) scratch
    table: torch.Tensor,  # (V, 4H) the first layer's input projection
    w0: torch.Tensor,  # (H, 4H)
    h0: torch.Tensor,  # (b, H) the first layer's own h
    ws: list[torch.Tensor],  # (2H, 4H) per layer above the first ([0] unused)
    bs: list[torch.Tensor],  # (4H,)
    belows: list[torch.Tensor],  # (b, 2H) [h below, own h] per layer above the first
    gates: list[torch.Tensor],  # (b, 4H) per layer, gates (i, f, o, g)
    cs: list[torch.Tensor],  # (b, H) per layer
    hs: list[torch.Tensor],  # (b, H) per layer, its own h
    ups: list[torch.Tensor],  # (b, H) where a layer's h goes up ([-1] unused)
    half: torch.Tensor,
    w_out: torch.Tensor,  # (H, V)
    b_out: torch.Tensor,  # (V,)
    ends: bool,
    newline: int,
    budget: int,
    drawn: torch.Tensor,  # (b,) int64 characters of the current line
    states: list[torch.Tensor],  # the state buffers (b, n) and the start rows they go back to
    starts: list[torch.Tensor],
    start_logits: torch.Tensor,  # (1 or b, V)
) -> None:
    H = h0.shape[1]
    L = len(gates)
    for t in range(ids_out.shape[0]):
        if inv_t == 1.0:  # x * 1 is x: one pass fewer at the default temperature
            torch.add(logits, noise[:, row + t], out=scored)
        else:
            torch.mul(logits, inv_t, out=scored)
            scored.add_(noise[:, row + t])
        ids = ids_out[t]
        ids.copy_(torch.argmax(scored, -1))
        for i in range(L):
            g = gates[i]
            if i == 0:
                torch.index_select(table, 0, ids, out=g)
                g.addmm_(h0, w0)
            else:
                torch.addmm(bs[i], belows[i], ws[i], out=g)
            g.tanh_()
            sig = g[:, : 3 * H]
            torch.add(half, sig, alpha=0.5, out=sig)  # sigmoid = tanh(x/2)/2 + 1/2
            c = cs[i]
            c.mul_(g[:, H : 2 * H]).addcmul_(g[:, :H], g[:, 3 * H :])
            h = hs[i]
            torch.tanh(c, out=h)
            h.mul_(g[:, 2 * H : 3 * H])
            if i + 1 < L:
                ups[i].copy_(h)
        torch.addmm(b_out, hs[L - 1], w_out, out=logits)
        if ends:
            drawn += 1
            over = (ids == newline) | (drawn > budget)
            ends_out[t] = over
            drawn.masked_fill_(over, 0)
            if bool(over.any()):
                rows = over.unsqueeze(1)
                for j in range(len(states)):
                    states[j].copy_(torch.where(rows, starts[j], states[j]))
                logits.copy_(torch.where(rows, start_logits, logits))


class Lane:
    """Some of the streams: their stepper, noise, logits and line lengths."""

    def __init__(self, model: CharRNN, start: Start, rngs: list[np.random.Generator], *,
                 strategy: Strategy, ends: LineEnds | None) -> None:  # fmt: skip
        b, t = len(rngs), torch.from_numpy
        self.stepper = st = LstmStepper(model, start.h, b)
        v = st._rows(b)
        V = start.logits.shape[-1]
        self.noise = Noise(rngs, V, ahead=False)  # drawn in the lane's own thread
        self.ends = ends
        self.inv_t = 1.0 / strategy.temperature
        start_logits = start.logits.detach().float().cpu().contiguous()  # (1 or b, V)
        self.logits = start_logits.expand(b, V).clone()
        self.scored = torch.empty(b, V)
        self.drawn = torch.zeros(b, dtype=torch.long)
        self.weights = (v.table, v.w0, v.h0, [v.w0, *v.w[1:]], v.b)
        layers = v.layers
        self.buffers = (
            [v.h0, *(layer[-1] for layer in layers[1:])],  # belows ([0] unused)
            [layer[0] for layer in layers],
            [layer[6] for layer in layers],
            [layer[7] for layer in layers],
            [*(u for u in v.up if u is not None), v.h0],  # ups ([-1] unused)
        )
        self.head = (v.half, v.w_out, v.b_out)
        self.states = [t(a) for a in st._state()]
        self.starts = [t(a) for a in st._start]
        self.start_logits = start_logits

    def steps(self, T: int) -> Chunk:
        """Draw T characters a stream: ids (T, b) and, with line ends, where lines ended."""
        b = self.stepper.batch
        ids = torch.empty((T, b), dtype=torch.long)
        ends_out = torch.zeros((T, b), dtype=torch.bool)
        e, noise = self.ends, self.noise
        table, w0, h0, ws, bs = self.weights
        belows, gates, cs, hs, ups = self.buffers
        half, w_out, b_out = self.head
        done = 0
        # inference mode is per thread: the buffers may be inference tensors (a lane made
        # under it), which only it may update in place. One OpenMP thread a lane (torch's
        # products follow it); not OpenBLAS, whose limits only its first caller may set
        with _controller().limit(limits=1, user_api="openmp"), torch.inference_mode():
            while done < T:
                if noise.row == noise.rows:
                    noise.refill()
                n = min(T - done, noise.rows - noise.row)
                _scripted()(
                    ids[done : done + n], ends_out[done : done + n],
                    torch.from_numpy(noise.block), noise.row, self.inv_t, self.logits,
                    self.scored, table, w0, h0, ws, bs, belows, gates, cs, hs, ups, half,
                    w_out, b_out, e is not None, e.newline if e else -1, e.budget if e else 0,
                    self.drawn, self.states, self.starts, self.start_logits,
                )  # fmt: skip
                noise.row += n
                done += n
        return ids.numpy(), (ends_out.numpy() if e is not None else None)


_POOL: list[ThreadPoolExecutor] = []
_CONTROLLER: list[ThreadpoolController] = []


def _controller() -> ThreadpoolController:
    """The BLAS and OpenMP libraries, found once (`threadpool_limits` looks for them on each
    call: 0.23 ms, against 0.01 ms for a limit on a controller, per lane and chunk)."""
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def _pool() -> ThreadPoolExecutor:
    """The lanes' threads, made once for the process (they wait on a lock when idle)."""
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(os.cpu_count() or 2, thread_name_prefix="charrnn-lane"))
    return _POOL[0]


def run_lanes(lanes: list[Lane], T: int) -> Chunk:
    """T steps of every lane at once, their streams side by side in lane order."""
    _controller()  # found here, before the lanes' threads look for it
    done = [f.result() for f in [_pool().submit(lane.steps, T) for lane in lanes]]
    ids = np.concatenate([d[0] for d in done], axis=1)
    ends = [d[1] for d in done]
    return ids, (np.concatenate(ends, axis=1) if ends[0] is not None else None)
