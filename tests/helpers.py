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


def train_tiny(folder: Path, run: str, *args: str, steps: int = 60) -> Path:
    """Train a tiny run on a small regular text in `folder`/home (in-process); its run folder,
    for a module-scoped fixture to copy into each test's home."""
    import pytest

    from charrnn_cli import console
    from charrnn_cli.cli import main

    corpus = folder / "corpus.txt"
    lines = ["the cat sat on the mat.", "a dog ran to the log.", "we see the sea and the sky."]
    corpus.write_text("\n".join(lines * 120) + "\n", encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHARRNN_HOME", str(folder / "home"))
        console.reset()
        code = main(["train", "--corpus", str(corpus), "--run", run, *TINY, "--max-steps",
                     str(steps), "--eval-every", "30", "--quiet", *args])  # fmt: skip
    assert code == 0
    return folder / "home" / "runs" / run
