"""Small helpers shared by the test modules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TINY = ["--hidden-size", "16", "--embed-size", "8", "--layers", "1", "--batch-size", "8",
        "--seq-len", "16"]  # fmt: skip


def metrics(home: Path, run: str) -> list[dict]:
    path = home / "runs" / run / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def val_losses(home: Path, run: str) -> dict[int, float]:
    return {r["step"]: r["val_loss"] for r in metrics(home, run) if "val_loss" in r}


def spawn(*args: str, env: dict | None = None, **kw) -> subprocess.Popen:
    """`python -m charrnn_cli ARGS` in a subprocess with the test's environment."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "charrnn_cli", *args],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )
