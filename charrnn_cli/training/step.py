"""The parts of one training step of a `Trainer` (train.py): whether every rank goes on, the
next window's loss and gradients (the state carried across the window edge, some streams sent
back to the start state, autocast where the precision asks), a non-finite step skipped on every
rank, and the step record written at most once a second.

`Stepping` is a mixin: it reads the trainer's model, optimizer, shard, configs and state.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from charrnn_cli.data import batches
from charrnn_cli.errors import CharrnnError
from charrnn_cli.model import State, detach

if TYPE_CHECKING:
    from charrnn_cli.training.train_state import Event

MAX_BAD_STEPS = 5  # consecutive non-finite steps before training gives up
LOG_EVERY_S = 1.0  # how often a step record is yielded (and a metrics line written)


class Stepping:
    """What a step does, on the trainer's attributes (see `Trainer.__init__`)."""

    state: Any
    tcfg: Any
    comm: Any

    def agree(self, should_stop: Callable[[], str | None]) -> tuple[str, float]:
        """Why training ends now ("" to go on), and the clock every rank goes by.

        One collective a step: whether any rank was asked to stop, and the slowest rank's
        clock, which every rank then uses for the budget, the schedule and timed saves."""
        signal = should_stop()
        stop_any, clock = self.comm.max(float(signal is not None), self.state.elapsed())
        budget = self.tcfg.max_minutes
        if stop_any > 0:
            return signal or "stopped", clock
        if budget and clock >= budget * 60:
            return "budget", clock
        return ("done" if self.state.step >= self.total else ""), clock

    def _forward_backward(self) -> tuple[float, bool]:
        """Loss and gradients of the next window; whether loss and gradient norm are finite."""
        s, scaler = self.state, self.scaler
        x, y = batches.window(self.shard.rows, s.cursor, self.tcfg.seq_len)  # (B, T) each
        # detach: the state carries values across the window edge, but gradients stop here,
        # or backward would run all the way back to the start of the text
        h_in = self._restarts(detach(s.hidden))
        amp = self.amp
        with torch.autocast(self.dev.type, dtype=amp) if amp else contextlib.nullcontext():
            logits, h_out = self.net(x, h_in)  # (B, T, V)
            flat = logits.float().reshape(-1, logits.shape[-1])  # (B*T, V)
            loss = F.cross_entropy(flat, y.reshape(-1))
        # the state autocast left is bf16 or fp16: carry (and checkpoint) it as fp32, the same
        # values, so that a run resumed in fp32 (another machine, --device) can take it up
        s.hidden = _as_fp32(h_out) if amp else h_out
        if s.step + 1 in self.nan_steps:
            loss = loss * float("nan")
        self.opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(self.opt)
        else:
            loss.backward()
        # clip exploding gradients; the norm is the same on every rank (DDP averaged them)
        clip = self.tcfg.grad_clip if self.tcfg.grad_clip > 0 else math.inf
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        value = loss.detach().item()
        return value, math.isfinite(value) and math.isfinite(float(norm))

    def _restarts(self, h: State | None) -> State | None:
        """Send each stream back to the start state with probability `restart_prob`.

        The draw depends only on the seed and the step, and is made for the streams of every
        rank, so a resumed or data-parallel run restarts the same streams as a straight one."""
        p, comm = self.tcfg.restart_prob, self.comm
        if h is None or (p <= 0 and self.model.start is None):
            return h
        every = batches.restart_mask(
            self.tcfg.random_seed, self.state.step, self.tcfg.batch_size * comm.world, p
        )
        mask = every[comm.rank :: comm.world]  # this rank's streams, as batches.shard deals them
        return self.model.restart(h, mask.to(self.dev))

    def _skip(self) -> Iterator[Event]:
        """Count a step no rank applied; give up after MAX_BAD_STEPS in a row."""
        s = self.state
        s.skipped += 1
        s.bad_run += 1
        s.hidden = None  # the state may hold NaNs too
        if self.scaler is not None:
            self.scaler.update()
        yield self._record("skip", info={"run": s.bad_run})
        if s.bad_run >= MAX_BAD_STEPS:
            raise CharrnnError(
                f"the loss was not finite for {s.bad_run} steps in a row (up to step {s.step}); "
                "training stopped and the last good checkpoint is kept: resume with a lower "
                "--lr or a tighter --grad-clip in a new --run"
            )

    def _log(self, t_step: float) -> Iterator[Event]:
        """A step record and metrics line at most every LOG_EVERY_S, and at the last step."""
        s, budget, meter = self.state, self.tcfg.max_minutes, self.meter
        now = time.perf_counter()
        meter.add(now - t_step)
        if now - meter.last < LOG_EVERY_S and s.step != self.total:
            return
        eta = meter.take(now, self.total - s.step)
        if budget:
            budget_left = budget * 60 - s.elapsed()
            eta = min(eta, budget_left) if eta is not None else budget_left
        self._write_metrics()
        yield self._record("step", train_loss=s.smooth, chars_per_sec=meter.rate, eta_s=eta)


def _as_fp32(h: State) -> State:
    if isinstance(h, tuple):
        return (h[0].float(), h[1].float())
    return h.float()
