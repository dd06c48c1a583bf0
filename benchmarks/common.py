"""Helpers shared by the benchmarks: JSON output, medians, subprocess timing, the corpus."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
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
