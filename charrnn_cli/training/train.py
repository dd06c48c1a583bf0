"""The training loop: stateful truncated BPTT with checkpoints, evaluation and exact resume.

`train(job)` is a generator: it yields `Event`s (start, step, eval, sample, save, skip, end) that
the CLI renders, and writes the run's files itself (config.json, metrics.jsonl, samples.jsonl,
last.pt, best.pt). A short sample follows each evaluation (sampling/during_training.py).
It never prints. The loop carries the hidden state from each window to the next (see
batches.py), evaluates the held-out tail at each epoch end, every `eval_every` steps and when
training ends, and saves `last.pt` at each epoch end, every `save_every` minutes, at the end and
when `should_stop()` asks (Ctrl-C, SIGTERM). A resumed run restores the weights, optimizer,
step, data cursor, stream state and RNG states, so k steps + resume + k steps equals 2k steps.

A `Trainer` holds the model, the data and a `TrainState`; `train` is the loop over its steps.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from charrnn_cli import device
from charrnn_cli.data import batches
from charrnn_cli.evaluate import LN2, Score, score
from charrnn_cli.model import CharRNN
from charrnn_cli.sampling.during_training import TrainingSampler
from charrnn_cli.storage import checkpoint, store
from charrnn_cli.training import finetune, train_state
from charrnn_cli.training.distributed import Comm
from charrnn_cli.training.job import Job, check_data, limit_reached
from charrnn_cli.training.optim import lr_at, make_optimizer
from charrnn_cli.training.step import Stepping
from charrnn_cli.training.train_state import Event, Kind, Meter, TrainState, keep_streams
from charrnn_cli.vocab import characters_in


def train(
    job: Job,
    *,
    should_stop: Callable[[], str | None] = lambda: None,
    comm: Comm | None = None,
) -> Iterator[Event]:
    """Train `job`, yielding records; raises CharrnnError for what the user must fix."""
    trainer = Trainer(job, comm or Comm())
    trainer.restore()
    try:
        yield trainer.start()
        while True:
            reason, clock = trainer.agree(should_stop)
            if reason:
                break
            if trainer.state.cursor >= trainer.shard.per_epoch:
                yield from trainer.end_epoch()
            else:
                yield from trainer.step(clock)
        yield from trainer.finish(reason)
    finally:
        trainer.close()


class Trainer(Stepping):
    """One process's share of a training job: its streams, its model replica, its state
    (the parts of a step are step.py's)."""

    def __init__(self, job: Job, comm: Comm) -> None:
        self.job, self.comm = job, comm
        self.mcfg, self.tcfg = job.model, job.train
        self.run = store.run_dir(job.name)
        self._ck = checkpoint.load(self.run / "last.pt") if job.resume else None
        if self._ck is not None:
            keep_streams(self._ck, self.tcfg, comm.world)
        dev = self.dev = comm.device if comm.active else device.pick(self.tcfg.device)
        self.precision = device.resolve_precision(self.tcfg.precision, dev, job.precision_fallback)
        data = job.data
        check_data(data.ids, self.tcfg, comm.world, data.distinct)
        self.mcfg.vocab_size = len(data.vocab)
        self.shard = batches.deal(
            data.ids, self.mcfg.vocab_size, self.tcfg, comm.rank, comm.world, dev, data.counts
        )
        torch.manual_seed(self.tcfg.random_seed)
        random.seed(self.tcfg.random_seed)
        model = self.model = CharRNN(self.mcfg).to(dev)
        model.rnn.flatten_parameters()  # one contiguous weight buffer for cuDNN after the move
        self.net: torch.nn.Module = model
        if comm.active:
            from torch.nn.parallel import DistributedDataParallel

            ids = [dev.index] if dev.type == "cuda" else None
            self.net = DistributedDataParallel(model, device_ids=ids)
        self.opt = make_optimizer(model, self.tcfg)
        self.amp = device.autocast_dtype(self.precision)
        self.scaler = torch.amp.GradScaler(dev.type) if self.precision == "fp16" else None
        self.state = TrainState()
        self.metrics: store.MetricsWriter | None = None
        self.nan_steps = train_state.injected_nan_steps(comm.rank)
        self.total, self.lr = 0, 0.0
        self.meter = Meter(self.tcfg.batch_size * self.tcfg.seq_len * comm.world)
        self.last_eval_step, self.last_val = -1, math.inf
        self.last_save = 0.0
        self.unit = "byte" if self.mcfg.vocab == "bytes" else "char"  # what an id is
        # the characters a byte run's scored held-out bytes make (continuation bytes aside)
        self.val_text_chars = (
            characters_in(self.shard.val_rows[:, 1:]) if self.unit == "byte" else 0
        )
        sampler = TrainingSampler.of(self.tcfg, data.vocab, self.mcfg.vocab, self.shard.unigram)
        self.sampler = sampler if comm.is_main else None  # one rank draws the samples

    def restore(self) -> None:
        """Take up where the checkpoint (fine-tuning: the parent's) left off; set the budget."""
        ck, self._ck = self._ck, None
        if ck is not None:
            checkpoint.restore(ck, self.run / "last.pt", self.model, self.opt, self.scaler)
            self.state = TrainState.from_checkpoint(ck, self.mcfg.cell, self.dev, self.comm)
            rngs = ck.get("rng") or []
            if self.comm.rank < len(rngs):
                checkpoint.set_rng_state(rngs[self.comm.rank])
        elif self.job.parent is not None:  # fine-tuning: the parent's weights, a fresh optimizer
            finetune.init_from(self.model, self.job, self.comm)
        s, tcfg = self.state, self.tcfg
        self.total = per_run = self.shard.per_epoch * tcfg.epochs
        if tcfg.max_steps is not None:
            self.total = min(per_run, tcfg.max_steps)
        if self.job.resume and s.step >= self.total:
            raise limit_reached(self.job.name, s.step, s.epoch, tcfg, per_run)

    def start(self) -> Event:
        """Ready the run's folder (rank 0) and start the clock: the first record."""
        s, job, dev = self.state, self.job, self.dev
        if self.comm.is_main:
            self.metrics = self._open_run()
        if self.sampler is not None:
            self.sampler.open(job.name, s.step)
        s.start_clock()
        self.lr = lr_at(self.tcfg, s.step, self.total, s.elapsed())
        self.meter.last = time.perf_counter()
        self.last_save = s.elapsed_before  # on the agreed clock (see `agree`)
        shard = self.shard
        info = {"device": device.describe(dev), "parameters": self.model.num_parameters()}
        info["precision"] = self.precision
        if self.tcfg.precision not in ("auto", self.precision):  # the run's wish, not here
            info["note"] = (
                f"the run trained in {self.tcfg.precision}, which {info['device']} lacks: it goes "
                f"on in {self.precision} (the weights are the same; --precision sets it)"
            )
        info.update(steps_per_epoch=shard.per_epoch, train_chars=shard.train_chars)
        info.update(val_chars=shard.val_chars, vocab_size=self.mcfg.vocab_size)
        info.update(world_size=self.comm.world, resumed=job.resume, unit=self.unit)
        return self._record("start", info=info)

    def _open_run(self) -> store.MetricsWriter:
        job, world, dev = self.job, self.comm.world, self.dev
        if job.resume:
            train = job.train_section()
            return store.resume_run(
                job.name, train, world, self.state.step, precision_used=self.precision
            )
        parameters, where = self.model.num_parameters(), device.describe(dev)
        record = job.record(
            parameters=parameters, device=where, world_size=world, torch=torch.__version__,
            precision_used=self.precision,
        )  # fmt: skip
        return store.new_run(job.name, record)

    def step(self, clock: float) -> Iterator[Event]:
        """One window of every stream, and what falls due after it: a log line, an
        evaluation, a timed save. A non-finite step on any rank is skipped on all."""
        s, tcfg = self.state, self.tcfg
        t_step = time.perf_counter()
        self.lr = lr_at(tcfg, s.step, self.total, clock)
        for group in self.opt.param_groups:
            group["lr"] = self.lr
        loss, finite = self._forward_backward()
        # every rank takes the same branch: a bad step on any rank is skipped on all, and
        # the loss reported is the mean over the whole (global) batch
        loss_sum, bad_ranks = self.comm.sum(loss if finite else 0.0, 0.0 if finite else 1.0)
        s.step += 1
        s.cursor += 1
        if bad_ranks:
            yield from self._skip()
            return
        s.bad_run = 0
        if self.scaler is not None:
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            self.opt.step()
        loss = loss_sum / self.comm.world
        s.smooth = loss if s.smooth is None else 0.95 * s.smooth + 0.05 * loss
        yield from self._log(t_step)
        if tcfg.eval_every and s.step % tcfg.eval_every == 0:
            yield from self.evaluate_and_save(())
        if self.sampler is not None and self.sampler.due(s.step):
            yield self.sample()
        if tcfg.save_every and clock - self.last_save >= tcfg.save_every * 60:
            yield self.save(("last",))
            self.last_save = clock

    def _write_metrics(self, **extra: Any) -> None:
        if self.metrics is not None:
            s = self.state
            row = {"step": s.step, "epoch": s.epochs_done(self.shard.per_epoch)}
            row.update(elapsed_s=round(s.elapsed(), 3), lr=self.lr, train_loss=s.smooth)
            self.metrics.write({**row, "chars_per_sec": self.meter.rate, **extra})

    def evaluate(self) -> Event:
        """Score the held-out text (every rank its share, summed) and log it."""
        s = self.state
        # on the CPU the held-out score stays fp32, the figure `charrnn eval` gives for the run
        amp = self.amp if self.dev.type != "cpu" else None
        part = score(self.model, self.shard.val_rows, self.dev, autocast=amp)
        chars, loss_sum, correct, text_chars = self.comm.sum(
            part.chars, part.loss_sum, part.correct, self.val_text_chars
        )
        val = Score(int(chars), loss_sum, int(correct))
        improved = val.loss < s.best_val
        if improved:
            s.best_val = val.loss
        self.last_eval_step, self.last_val = s.step, val.loss
        # a byte run's loss is per byte; its bits/char spreads the same bits over the characters
        # the scored bytes make, the figure `charrnn eval` gives, so both kinds of run compare
        bpc, per_byte = val.bits_per_char, {}
        if self.mcfg.vocab == "bytes":
            per_byte = {"val_bpb": bpc}
            bpc = loss_sum / LN2 / text_chars if text_chars else bpc
        self._write_metrics(val_loss=val.loss, val_bpc=bpc, val_accuracy=val.accuracy, **per_byte)
        info = {"unit": self.unit, **per_byte}
        return self._record("eval", val_loss=val.loss, val_bpc=bpc, best=improved, info=info)

    def evaluate_and_save(
        self, which: tuple[str, ...], best_missing: bool = False
    ) -> Iterator[Event]:
        """Evaluate (unless this step already was), then save `which` and best.pt when the
        held-out loss improved or `best_missing`."""
        improved = False
        if self.last_eval_step != self.state.step:
            rec = self.evaluate()
            yield rec
            improved = rec.best
            if self.sampler is not None and self.sampler.after_evaluations:
                yield self.sample()
        if improved or best_missing:
            which = (*which, "best")
        if which:
            yield self.save(which)

    def sample(self) -> Event:
        """Draw and keep a short sample of the model as it is now (rank 0 only)."""
        val = self.last_val if self.last_eval_step == self.state.step else None
        rec = self.sampler.take(self.model, self.state.step, val)  # type: ignore[union-attr]
        info = {"temperature": rec["temperature"]}
        return self._record("sample", val_loss=val, text=rec["text"], info=info)

    def save(self, which: tuple[str, ...]) -> Event:
        """Checkpoint to `which` (last, best); a collective: every rank takes part."""
        data = self.state.to_checkpoint(self.comm)
        data["rng"] = self.comm.gather_objects(checkpoint.rng_state())
        if self.comm.is_main:
            scaler = self.scaler.state_dict() if self.scaler is not None else None
            data.update(optimizer=self.opt.state_dict(), scaler=scaler)
            data.update(corpus_sha256=self.job.data.sha256, world_size=self.comm.world)
            data["unigram"] = self.shard.unigram  # for samples with no seed text
            data = checkpoint.payload(self.model, self.mcfg, self.tcfg, self.job.data.vocab, **data)
            for name in which:
                checkpoint.save(self.run / f"{name}.pt", data)
        s = self.state  # no lr: a save is not a step
        return Event("save", s.step, self.total, s.epoch, s.elapsed(), reason="+".join(which))

    def end_epoch(self) -> Iterator[Event]:
        """Evaluate, save, and start the streams anew at the top of the text."""
        s = self.state
        s.epoch, s.cursor, s.hidden = s.epoch + 1, 0, None
        yield from self.evaluate_and_save(("last",))

    def finish(self, reason: str) -> Iterator[Event]:
        """The end, however reached: a final evaluation and save, so every run has a best.pt."""
        s = self.state
        best_missing = self.comm.any(not (self.run / "best.pt").exists())[0]
        yield from self.evaluate_and_save(("last",), best_missing)
        best, info = s.best_val, {"skipped_steps": s.skipped, "unit": self.unit}
        yield self._record(
            "end", train_loss=s.smooth, val_loss=best, val_bpc=best / LN2, reason=reason, info=info
        )

    def close(self) -> None:
        if self.metrics is not None:
            self.metrics.close()
        if self.sampler is not None:
            self.sampler.close()

    def _record(self, kind: Kind, **fields: Any) -> Event:
        s = self.state
        return Event(kind, s.step, self.total, s.epoch, s.elapsed(), lr=self.lr, **fields)
