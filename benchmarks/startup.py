"""Start-up: `charrnn --help` and `charrnn sample --len 1` beside `python -c "import torch"`."""

from __future__ import annotations

import os
import sys
import tempfile

from benchmarks.common import charrnn, emit, wall


def run(sample_run: str | None = None) -> None:
    torch_s = wall([sys.executable, "-c", "import torch"])
    help_s = wall([*charrnn(), "--help"])
    emit(bench="startup", what="charrnn --help", seconds=round(help_s, 3),
         reference="python -c 'import torch'", reference_seconds=round(torch_s, 3),
         speedup=round(torch_s / help_s, 1))  # fmt: skip
    if sample_run:
        env = {"CHARRNN_HOME": os.environ.get("CHARRNN_HOME", tempfile.gettempdir())}
        s = wall([*charrnn(), "sample", "--run", sample_run, "--len", "1"], env=env)
        emit(bench="startup", what="charrnn sample --len 1", seconds=round(s, 3),
             reference_seconds=round(torch_s, 3), ratio=round(s / torch_s, 2))  # fmt: skip
