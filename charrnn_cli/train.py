"""The training loop: stateful truncated BPTT with checkpoints, evaluation and exact resume.

`train(job)` is a generator: it yields `Record`s (start, step, eval, save, skip, end) that the
CLI renders, and writes the run's files itself (config.json, metrics.jsonl, last.pt, best.pt).
It never prints. The loop carries the hidden state from each window to the next (see
batches.py), evaluates the held-out tail at each epoch end, every `eval_every` steps and when
training ends, and saves `last.pt` at each epoch end, every `save_every` minutes, at the end and
when `should_stop()` asks (Ctrl-C, SIGTERM). A resumed run restores the weights, optimizer,
step, data cursor, stream state and RNG states, so k steps + resume + k steps equals 2k steps.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from charrnn_cli import __version__, batches, checkpoint, device, store
from charrnn_cli.config import TrainConfig, to_dict
from charrnn_cli.data import Job, check_data, split
from charrnn_cli.distributed import Comm
from charrnn_cli.errors import CharrnnError, UsageError
from charrnn_cli.evaluate import LN2, Score, eval_rows, score
from charrnn_cli.model import CharRNN, State, detach
from charrnn_cli.optim import lr_at, make_optimizer

MAX_BAD_STEPS = 5  # consecutive non-finite steps before training gives up
LOG_EVERY_S = 1.0  # how often a step record is yielded (and a metrics line written)


@dataclass
class Record:
    kind: str  # start | step | eval | save | skip | end
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


def _injected_nan_steps(rank: int) -> set[int]:
    """Fault injection for the reliability tests: CHARRNN_FAULT_NAN_STEPS="5,6" (optionally
    only on CHARRNN_FAULT_NAN_RANK) makes those steps' loss NaN."""
    spec = os.environ.get("CHARRNN_FAULT_NAN_STEPS", "")
    only = os.environ.get("CHARRNN_FAULT_NAN_RANK")
    if not spec or (only is not None and int(only) != rank):
        return set()
    return {int(s) for s in spec.split(",") if s.strip()}


def _keep_streams(ck: dict[str, Any], cfg: TrainConfig, world: int) -> None:
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


def _state_to_cpu(h: State | None) -> list[torch.Tensor]:
    if h is None:
        return []
    return [t.detach().cpu() for t in (h if isinstance(h, tuple) else (h,))]


def _state_from(tensors: list[torch.Tensor], cell: str, dev: torch.device) -> State | None:
    if not tensors:
        return None
    moved = [t.to(dev) for t in tensors]
    return (moved[0], moved[1]) if cell == "lstm" else moved[0]


def train(
    job: Job,
    *,
    should_stop: Callable[[], str | None] = lambda: None,
    comm: Comm | None = None,
) -> Iterator[Record]:
    """Train `job`, yielding records; raises CharrnnError for what the user must fix."""
    comm = comm or Comm()
    mcfg, tcfg = job.model, job.train
    run = store.run_dir(job.name)
    ck = checkpoint.load(run / "last.pt") if job.resume else None
    if ck is not None:
        _keep_streams(ck, tcfg, comm.world)
    dev = comm.device if comm.active else device.pick(tcfg.device)
    if tcfg.precision != "fp32" and dev.type == "cpu":
        raise UsageError(f"--precision {tcfg.precision} needs a GPU; use fp32 on the CPU")
    ids = job.data.ids
    check_data(ids, tcfg, comm.world)
    mcfg.vocab_size = len(job.data.vocab)
    train_ids, val_ids = split(ids, tcfg.val_fraction)
    unigram = np.bincount(train_ids, minlength=mcfg.vocab_size).tolist()  # for unseeded samples

    # all of the training streams, then this rank's disjoint share of them
    rows = batches.streams(train_ids, tcfg.batch_size * comm.world)  # (B*world, N)
    rows = batches.shard(rows, comm.rank, comm.world).contiguous().to(dev)  # (B, N)
    per_epoch = batches.steps_per_epoch(rows, tcfg.seq_len)
    val_rows = eval_rows(val_ids)
    val_rows = val_rows[comm.rank :: comm.world] if len(val_rows) >= comm.world else val_rows

    torch.manual_seed(tcfg.random_seed)
    random.seed(tcfg.random_seed)
    model = CharRNN(mcfg).to(dev)
    model.rnn.flatten_parameters()  # one contiguous weight buffer for cuDNN after the move
    net: torch.nn.Module = model
    if comm.active:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    opt = make_optimizer(model, tcfg)
    amp = device.autocast_dtype(tcfg.precision)
    scaler = torch.amp.GradScaler(dev.type) if tcfg.precision == "fp16" else None

    step = epoch = cursor = bad_run = skipped = 0
    smooth: float | None = None
    elapsed_before = 0.0
    best_val = math.inf
    h: State | None = None
    if ck is not None:
        try:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise CharrnnError(f"{run / 'last.pt'} does not fit this run's config: {exc}") from None
        model.rnn.flatten_parameters()
        if scaler is not None and ck.get("scaler"):
            scaler.load_state_dict(ck["scaler"])
        step, epoch, cursor = int(ck["step"]), int(ck["epoch"]), int(ck["cursor"])
        elapsed_before = float(ck["elapsed_s"])
        best_val = float(ck.get("best_val_loss", math.inf))
        skipped = int(ck.get("skipped_steps", 0))
        smooth = ck.get("train_loss_smooth")
        stream_state = ck.get("hidden") or []
        if comm.active:
            stream_state = [t[:, comm.rank :: comm.world] for t in stream_state]
        h = _state_from(stream_state, mcfg.cell, dev)
        rngs = ck.get("rng") or []
        if comm.rank < len(rngs):
            checkpoint.set_rng_state(rngs[comm.rank])
    total = per_epoch * tcfg.epochs
    if tcfg.max_steps is not None:
        total = min(total, tcfg.max_steps)
    if job.resume and step >= total:
        raise UsageError(
            f"run {job.name!r} already reached step {step} of {total} (epoch {epoch}); raise "
            "--epochs or --max-steps to continue it (limits count from the run's start)"
        )

    if comm.is_main:
        run.mkdir(parents=True, exist_ok=True)
        if job.resume:  # limits given anew become the run's, so a later --resume keeps them
            stored = store.read_config(job.name)
            stored["train"] = to_dict(mcfg, tcfg)["train"]
            stored["world_size"] = comm.world  # batch_size is per process (see _keep_streams)
            stored.pop("format", None)
            store.write_config(job.name, stored)
        else:
            store.write_config(
                job.name,
                {
                    "name": job.name,
                    "preset": job.preset,
                    **to_dict(mcfg, tcfg),
                    "corpus": job.corpus.to_dict(),
                    "vocab": job.data.vocab,
                    "parameters": model.num_parameters(),
                    "device": device.describe(dev),
                    "world_size": comm.world,
                    "torch": torch.__version__,
                    "charrnn": __version__,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                },
            )
        store.rewrite_metrics(job.name, step)
        metrics = store.MetricsWriter(job.name)
    nan_steps = _injected_nan_steps(comm.rank)

    def gather_state() -> list[torch.Tensor]:
        local = _state_to_cpu(h)
        if not comm.active or not local:
            return local
        out = []
        for t in local:  # reassemble (L, B*world, H) in the original row order
            parts = [torch.zeros_like(t) for _ in range(comm.world)]
            torch.distributed.all_gather(parts, t.to(comm.device))
            full = torch.empty(t.shape[0], t.shape[1] * comm.world, t.shape[2])
            for r, p in enumerate(parts):
                full[:, r :: comm.world] = p.cpu()
            out.append(full)
        return out

    def gather_rng() -> list[dict[str, Any]]:
        mine = checkpoint.rng_state()
        if not comm.active:
            return [mine]
        everyone: list[Any] = [None] * comm.world
        torch.distributed.all_gather_object(everyone, mine)
        return everyone

    def save(which: tuple[str, ...]) -> Record:
        hidden, rngs = gather_state(), gather_rng()  # collectives: every rank takes part
        if comm.is_main:
            data = checkpoint.payload(
                model, mcfg, tcfg, job.data.vocab,
                step=step, epoch=epoch, cursor=cursor, elapsed_s=elapsed(),
                best_val_loss=best_val, skipped_steps=skipped, hidden=hidden, rng=rngs,
                train_loss_smooth=smooth,
                optimizer=opt.state_dict(),
                scaler=scaler.state_dict() if scaler is not None else None,
                corpus_sha256=job.data.sha256, world_size=comm.world, unigram=unigram,
            )  # fmt: skip
            for name in which:
                checkpoint.save(run / f"{name}.pt", data)
        return Record("save", step, total, epoch, elapsed(), reason="+".join(which))

    def evaluate() -> Record:
        nonlocal best_val
        s = score(model, val_rows, dev, autocast=amp)
        chars, loss_sum, correct = comm.sum(s.chars, s.loss_sum, s.correct)
        s = Score(int(chars), loss_sum, int(correct))
        improved = s.loss < best_val
        if improved:
            best_val = s.loss
        rec = Record("eval", step, total, epoch, elapsed(), lr=lr, val_loss=s.loss,
                     val_bpc=s.bits_per_char, best=improved)  # fmt: skip
        if comm.is_main:
            metrics.write({"step": step, "epoch": epochs_done(), "elapsed_s": round(elapsed(), 3),
                           "lr": lr, "train_loss": smooth, "chars_per_sec": rate,
                           "val_loss": s.loss, "val_bpc": s.bits_per_char,
                           "val_accuracy": s.accuracy})  # fmt: skip
        return rec

    t0 = time.perf_counter()

    def epochs_done() -> float:
        """Passes over the training text so far (a fraction within the current one)."""
        return round(epoch + cursor / max(1, per_epoch), 3)

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - t0

    chars_per_step = tcfg.batch_size * tcfg.seq_len * comm.world
    lr = lr_at(tcfg, step, total, elapsed())
    rate: float | None = None
    last_log = time.perf_counter()
    last_save = elapsed_before  # on the agreed clock (see `clock` below)
    window_chars, window_time = 0, 0.0
    last_eval_step = -1
    yield Record("start", step, total, epoch, elapsed(), lr=lr, info={
        "device": device.describe(dev), "parameters": model.num_parameters(),
        "steps_per_epoch": per_epoch, "train_chars": len(train_ids), "val_chars": len(val_ids),
        "vocab_size": mcfg.vocab_size, "world_size": comm.world, "resumed": job.resume,
    })  # fmt: skip
    model.train()
    reason = "done"
    try:
        while True:
            # one collective a step: whether any rank was asked to stop, and the slowest rank's
            # clock, which every rank then uses for the budget, the schedule and timed saves
            stop_sig = should_stop()
            stop_any, clock = comm.max(float(stop_sig is not None), elapsed())
            stop = stop_any > 0
            budget_out = bool(tcfg.max_minutes) and clock >= tcfg.max_minutes * 60
            if stop or budget_out or step >= total:
                reason = (stop_sig or "stopped") if stop else "budget" if budget_out else "done"
                break
            if cursor >= per_epoch:  # end of an epoch: evaluate, save, start the streams anew
                epoch, cursor, h = epoch + 1, 0, None
                improved = False
                if last_eval_step != step:  # not already evaluated at this step (--eval-every)
                    rec = evaluate()
                    yield rec
                    last_eval_step, improved = step, rec.best
                yield save(("last", "best") if improved else ("last",))
                continue
            t_step = time.perf_counter()
            lr = lr_at(tcfg, step, total, clock)
            for group in opt.param_groups:
                group["lr"] = lr
            x, y = batches.window(rows, cursor, tcfg.seq_len)  # (B, T) each
            # detach: the state carries values across the window edge, but gradients stop here,
            # or backward would run all the way back to the start of the text
            h_in = detach(h)
            with torch.autocast(dev.type, dtype=amp) if amp else contextlib.nullcontext():
                logits, h = net(x, h_in)  # (B, T, V)
                loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
            if step + 1 in nan_steps:
                loss = loss * float("nan")
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
            else:
                loss.backward()
            # clip exploding gradients; the norm is the same on every rank (DDP averaged them)
            clip = tcfg.grad_clip if tcfg.grad_clip > 0 else math.inf
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            loss_value = loss.detach().item()
            finite = math.isfinite(loss_value) and math.isfinite(float(norm))
            # every rank takes the same branch: a bad step on any rank is skipped on all, and
            # the loss reported is the mean over the whole (global) batch
            loss_sum, bad_ranks = comm.sum(loss_value if finite else 0.0, 0.0 if finite else 1.0)
            if bad_ranks:
                skipped += 1
                bad_run += 1
                h = None  # the state may hold NaNs too
                cursor += 1
                step += 1
                if scaler is not None:
                    scaler.update()
                yield Record("skip", step, total, epoch, elapsed(), lr=lr, info={"run": bad_run})
                if bad_run >= MAX_BAD_STEPS:
                    raise CharrnnError(
                        f"the loss was not finite for {bad_run} steps in a row (up to step "
                        f"{step}); training stopped and the last good checkpoint is kept: "
                        "resume with a lower --lr or a tighter --grad-clip in a new --run"
                    )
                continue
            bad_run = 0
            loss_value = loss_sum / comm.world
            if scaler is not None:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            step += 1
            cursor += 1
            smooth = loss_value if smooth is None else 0.95 * smooth + 0.05 * loss_value
            now = time.perf_counter()
            window_chars += chars_per_step
            window_time += now - t_step
            if now - last_log >= LOG_EVERY_S or step == total:
                rate = window_chars / window_time if window_time else None
                left = total - step
                eta = left * window_time / (window_chars / chars_per_step) if rate else None
                if tcfg.max_minutes:
                    budget_left = tcfg.max_minutes * 60 - elapsed()
                    eta = min(eta, budget_left) if eta is not None else budget_left
                if comm.is_main:
                    metrics.write({"step": step, "epoch": epochs_done(),
                                   "elapsed_s": round(elapsed(), 3), "lr": lr,
                                   "train_loss": smooth, "chars_per_sec": rate})  # fmt: skip
                yield Record("step", step, total, epoch, elapsed(), lr=lr, train_loss=smooth,
                             chars_per_sec=rate, eta_s=eta)  # fmt: skip
                last_log, window_chars, window_time = now, 0, 0.0
            if tcfg.eval_every and step % tcfg.eval_every == 0:
                rec = evaluate()
                yield rec
                last_eval_step = step
                if rec.best:
                    yield save(("best",))
            if tcfg.save_every and clock - last_save >= tcfg.save_every * 60:
                yield save(("last",))
                last_save = clock
        # the end, however reached: a final evaluation so every run has a best.pt
        improved = False
        if last_eval_step != step:
            rec = evaluate()
            yield rec
            improved = rec.best
        missing_best = comm.any(not (run / "best.pt").exists())[0]
        yield save(("last", "best") if improved or missing_best else ("last",))
        yield Record("end", step, total, epoch, elapsed(), lr=lr, train_loss=smooth,
                     val_loss=best_val, val_bpc=best_val / LN2, reason=reason,
                     info={"skipped_steps": skipped})  # fmt: skip
    finally:
        if comm.is_main:
            metrics.close()
