"""Helpers shared by the benchmarks: JSON output, medians, subprocess timing, corpora, runs."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT.parent / "shared" / "corpora" / "tinyshakespeare.txt"


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def wall(cmd: list[str], repeats: int = 5, env: dict | None = None) -> float:
    """Median wall time of a command, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, env={**os.environ, **(env or {})}, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def charrnn() -> list[str]:
    return [sys.executable, "-m", "charrnn_cli"]


def corpus() -> Path:
    if not TINY.exists():
        sys.exit(f"benchmarks need Tiny Shakespeare at {TINY} (or run `charrnn fetch`)")
    return TINY


def scratch_home() -> str:
    """A throwaway CHARRNN_HOME for this benchmark process."""
    home = tempfile.mkdtemp(prefix="charrnn-bench-")
    os.environ["CHARRNN_HOME"] = home
    return home


def minutes(default: float) -> float:
    """Budgets scale with BENCH_MINUTES (e.g. 1 for a quick look; the targets assume 5)."""
    return float(os.environ.get("BENCH_MINUTES", default))


def train_records(given: dict, preset: str | None = None, corpus_path: Path | None = None):
    """charrnn's own training loop, in this process: yields its records."""
    from charrnn_cli import config
    from charrnn_cli.data import encode
    from charrnn_cli.training.job import CorpusInfo, Job
    from charrnn_cli.training.train import train

    scratch_home()
    model_cfg, train_cfg = config.build(given, preset)
    path = corpus_path or corpus()
    data = encode.load(path)
    info = CorpusInfo(path.stem, str(path), data.sha256, "bench")
    name = f"bench-{os.getpid()}-{time.monotonic_ns()}"
    return train(Job(name, model_cfg, train_cfg, data, info, preset=preset or "tutorial"))


# Prepended to the code that memory benchmarks run in a child process. VmHWM is the child's own
# peak; ru_maxrss would carry the parent's peak across fork and exec.
PEAK = """
def peak_mb():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""
