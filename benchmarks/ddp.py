"""Data-parallel throughput: training characters per second, 1 process vs `--nproc 2`.

Each process trains the default model (LSTM 2x128, batch 32 streams, seq 32) on Tiny
Shakespeare for a fixed number of steps (`--max-steps`, inside the first epoch so no epoch-end
evaluation or save falls in the window); the CPU threads are split fairly (all of them for one
process, an equal share each for several). The rate is read from metrics.jsonl: characters
trained (all ranks) between the first and the last step line, over rank 0's training clock
between them, so start-up (importing torch, joining the group) and the warm-up second are left
out. One JSON line per configuration, then one with the ratio.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

from benchmarks.common import charrnn, corpus, emit

BATCH, SEQ = 32, 32


def _rate(metrics: Path, chars_per_step: int) -> float:
    """Characters per second between the first and the last step line."""
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    steps = [r for r in rows if "val_loss" not in r and r.get("chars_per_sec")]
    if len(steps) < 2:
        raise RuntimeError(f"too few step lines in {metrics} to time: raise the step count")
    first, last = steps[0], steps[-1]
    return (
        (last["step"] - first["step"]) * chars_per_step / (last["elapsed_s"] - first["elapsed_s"])
    )


def measure(nproc: int, steps: int, threads: int, home: Path, tag: str) -> float:
    run = f"bench-{tag}"
    cmd = [*charrnn(), "train", "--corpus", str(corpus()), "--run", run, "--batch-size", str(BATCH),
           "--seq-len", str(SEQ), "--max-steps", str(steps), "--eval-every", "1000000",
           "--device", "cpu", "--quiet"]  # fmt: skip
    if nproc > 1:
        cmd += ["--nproc", str(nproc)]
    env = {**os.environ, "CHARRNN_HOME": str(home), "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return _rate(home / "runs" / run / "metrics.jsonl", BATCH * SEQ * nproc)


def run(steps: int = 480, repeats: int = 2, nproc: int = 2) -> None:
    cores = os.cpu_count() or 1
    share = max(1, cores // nproc)
    rates: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="charrnn-bench-ddp-") as tmp:
        for n, threads in ((1, cores), (nproc, share)):
            got = [measure(n, steps, threads, Path(tmp), f"{n}-{i}") for i in range(repeats)]
            rates[n] = statistics.median(got)
            emit(bench="ddp", processes=n, threads_per_process=threads,
                 batch_per_process=BATCH, seq_len=SEQ, steps=steps,
                 chars_per_sec=round(rates[n]), runs=[round(r) for r in got])  # fmt: skip
    emit(bench="ddp", what=f"{nproc} processes vs 1 on {cores} CPU cores",
         speedup=round(rates[nproc] / rates[1], 2),
         note="same per-process batch: the global batch grows with the processes")  # fmt: skip


if __name__ == "__main__":
    run()
