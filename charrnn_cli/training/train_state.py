"""Where a training run is, and how that goes into a checkpoint and comes back on resume.

`TrainState` holds what changes from step to step besides the weights and the optimizer: the
step, epoch and data cursor, the clock, the best held-out loss, the skip counts, the smoothed
loss and the hidden state the streams carry into their next window. `to_checkpoint` and
`from_checkpoint` turn it into the checkpoint's keys and back, gathering and dealing out the
streams' state between the ranks of a data-parallel run.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from charrnn_cli.config import TrainConfig
from charrnn_cli.errors import UsageError
from charrnn_cli.model import State
from charrnn_cli.storage import checkpoint
from charrnn_cli.training.distributed import Comm

Kind = Literal["start", "step", "eval", "sample", "save", "skip", "end"]


@dataclass
class Event:
    """What the training loop yields for the CLI to render: a start, a step, an evaluation, a
    sample (its `text`, the held-out `val_loss` at its step or None, info's temperature)..."""

    kind: Kind
    step: int = 0
    total_steps: int = 0
    epoch: int = 0
    elapsed_s: float = 0.0
    lr: float = 0.0
    train_loss: float | None = None
    chars_per_sec: float | None = None
    eta_s: float | None = None
    val_loss: float | None = None
    val_bpc: float | None = None
    best: bool = False
    reason: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    text: str | None = None  # a sample's text (kind "sample")


@dataclass
class TrainState:
    step: int = 0  # optimizer steps taken, skipped ones included, since the run began
    epoch: int = 0  # passes over the training text completed
    cursor: int = 0  # the window the streams read next, within this epoch
    elapsed_before: float = 0.0  # seconds the run trained before this process took it over
    best_val: float = math.inf  # the lowest held-out loss so far: best.pt's
    skipped: int = 0  # steps skipped for a non-finite loss or gradient, in all
    # skipped steps in a row just now; not saved: the checkpoint is from a good step
    bad_run: int = 0
    smooth: float | None = None  # the training loss, an exponential moving average
    # this rank's streams' state, carried into their next window (None: zeros)
    hidden: State | None = field(default=None, compare=False)
    started: float = field(default_factory=time.perf_counter, compare=False, repr=False)

    def start_clock(self) -> None:
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds of training in all, this process's and the earlier ones'."""
        return self.elapsed_before + time.perf_counter() - self.started

    def epochs_done(self, per_epoch: int) -> float:
        """Passes over the training text so far (a fraction within the current one)."""
        return round(self.epoch + self.cursor / max(1, per_epoch), 3)

    def to_checkpoint(self, comm: Comm) -> dict[str, Any]:
        """The state's keys of a checkpoint; a collective: every rank must call it, and rank 0
        gets every rank's streams in the checkpoint's (L, B x world, H) layout."""
        tensors = [] if self.hidden is None else _tensors(self.hidden)
        return {
            "step": self.step,
            "epoch": self.epoch,
            "cursor": self.cursor,
            "elapsed_s": self.elapsed(),
            "best_val_loss": self.best_val,
            "skipped_steps": self.skipped,
            "hidden": comm.gather_rows([t.detach() for t in tensors]),
            "train_loss_smooth": self.smooth,
        }

    @classmethod
    def from_checkpoint(
        cls, ck: dict[str, Any], cell: str, dev: torch.device, comm: Comm
    ) -> TrainState:
        """The state a checkpoint saved, with this rank's share of the streams on `dev`."""
        tensors = ck.get("hidden") or []
        if comm.active:  # the rows batches.shard deals to this rank
            tensors = [t[:, comm.rank :: comm.world] for t in tensors]
        hidden: State | None = None
        if tensors:
            moved = [t.to(dev) for t in tensors]
            hidden = (moved[0], moved[1]) if cell == "lstm" else moved[0]
        return cls(
            step=int(ck["step"]),
            epoch=int(ck["epoch"]),
            cursor=int(ck["cursor"]),
            elapsed_before=float(ck["elapsed_s"]),
            best_val=float(ck.get("best_val_loss", math.inf)),
            skipped=int(ck.get("skipped_steps", 0)),
            smooth=ck.get("train_loss_smooth"),
            hidden=hidden,
        )


@dataclass
class Meter:
    """Training speed over the steps since the last step record, and the time left at it."""

    per_step: int  # characters a step reads, on all ranks together
    chars: int = 0
    seconds: float = 0.0  # in steps only: evaluations and saves do not slow the figure
    last: float = field(default_factory=time.perf_counter)  # when the window opened
    rate: float | None = None  # characters a second, as of the last record

    def add(self, seconds: float) -> None:
        self.chars += self.per_step
        self.seconds += seconds

    def take(self, now: float, steps_left: int) -> float | None:
        """Close the window: set `rate`, and say how long `steps_left` take at it."""
        self.rate = self.chars / self.seconds if self.seconds else None
        eta = steps_left * self.seconds / (self.chars / self.per_step) if self.rate else None
        self.last, self.chars, self.seconds = now, 0, 0.0
        return eta


def _tensors(h: State) -> list[torch.Tensor]:
    return list(h) if isinstance(h, tuple) else [h]


def keep_streams(ck: dict[str, Any], cfg: TrainConfig, world: int) -> None:
    """Resume on the checkpoint's streams: a run of W processes x B streams resumes in `world`
    processes of W*B/world streams each, so the text layout, the data cursor and the carried
    state still fit (a data-parallel run resumes in one process, and the other way round)."""
    _, saved = checkpoint.configs(ck)
    total = saved.batch_size * int(ck.get("world_size", 1))
    if total % world:
        raise UsageError(
            f"this run reads {total} streams, which {world} processes cannot share evenly: "
            f"resume with a number of processes that divides {total}"
        )
    cfg.batch_size = total // world


def injected_nan_steps(rank: int) -> set[int]:
    """Fault injection for the reliability tests: CHARRNN_FAULT_NAN_STEPS="5,6" (optionally
    only on CHARRNN_FAULT_NAN_RANK) makes those steps' loss NaN."""
    spec = os.environ.get("CHARRNN_FAULT_NAN_STEPS", "")
    only = os.environ.get("CHARRNN_FAULT_NAN_RANK")
    if not spec or (only is not None and int(only) != rank):
        return set()
    return {int(s) for s in spec.split(",") if s.strip()}
