"""What the samples drawn during training cost: the same run with and without them.

The default model (tutorial preset) trains BENCH_SAMPLES_STEPS steps (1000: evaluations, and
so samples, at 500 and 1000) on Tiny Shakespeare, in this process, with samples at each
evaluation (the default) and with `--sample-every 0`, alternately, BENCH_SAMPLES_REPEATS times
each (2), after a 5-step warm-up; the best time of each is kept. Whole runs on a shared machine
are noisy, so the line also gives each sample's own time (the gap the sample record closes)
against a step's (the median rate of the step records, steps only): the overhead at the
default interval is about sample_ms / (eval_every x step_ms).
"""

from __future__ import annotations

import os
import statistics
import time

from benchmarks.common import emit, train_records
from charrnn_cli.config import TrainConfig

EVERY = TrainConfig().eval_every  # the default evaluation interval


def _timed(steps: int, sample_every: int | None) -> tuple[float, list[float], list[float]]:
    """Seconds for the whole run, the seconds each sample took, and the step records' rates
    (characters a second)."""
    given = {"max_steps": steps, "random_seed": 1, "sample_every": sample_every}
    start = time.perf_counter()
    last, gaps, rates = start, [], []
    for rec in train_records(given):
        now = time.perf_counter()
        if rec.kind == "sample":
            gaps.append(now - last)
        if rec.kind == "step" and rec.chars_per_sec:
            rates.append(rec.chars_per_sec)
        last = now
    return time.perf_counter() - start, gaps, rates


def run() -> None:
    steps = int(os.environ.get("BENCH_SAMPLES_STEPS", "1000"))
    repeats = int(os.environ.get("BENCH_SAMPLES_REPEATS", "2"))
    _timed(5, None)  # warm-up: the first run in a process pays for imports and first calls
    on, off, gaps, rates = [], [], [], []
    for _ in range(repeats):
        seconds, drawn, _ = _timed(steps, None)
        on.append(seconds)
        gaps += drawn
        seconds, _, measured = _timed(steps, 0)
        off.append(seconds)
        rates += measured
    cfg = TrainConfig()
    step_ms = 1000 * cfg.batch_size * cfg.seq_len / statistics.median(rates)
    sample_ms = 1000 * min(gaps) if gaps else None
    emit(
        bench="samples", steps=steps, samples_per_run=len(gaps) // repeats,
        seconds_with=round(min(on), 2), seconds_without=round(min(off), 2),
        ratio=round(min(on) / min(off), 3), sample_ms=sample_ms and round(sample_ms, 1),
        step_ms=round(step_ms, 2),
        overhead_at_default_interval=sample_ms and round(sample_ms / (EVERY * step_ms), 4),
    )  # fmt: skip


if __name__ == "__main__":
    run()
