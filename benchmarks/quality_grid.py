"""Quality grid (issue 34): held-out loss of `--preset auto`, `cpu` and `tutorial` on corpora of
about 50 KB, 200 KB, 1 MB and 5 MB at budgets of 1, 5 and 20 anchor-minutes.

An anchor-minute is 29,000 / A minutes, A the tutorial port's chars/s (reference A of
../shared/acceptance/reference/rnn_bench.py, LSTM, 30 s) measured before each text's cells, so
the figures travel between machines (A is 29,000 on the machine the goals were set on). Corpora:
the first N characters of Tiny Shakespeare, and past its 1.1 MB the offline `pysrc` corpus
(Python's own sources), each with its last 10% held out. One JSON line per cell; narrow the
grid with GRID_SIZES, GRID_BUDGETS, GRID_PRESETS (comma-separated), e.g. for a quick look
`GRID_SIZES=50000 GRID_BUDGETS=1 python -m benchmarks quality_grid`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.common import ROOT, charrnn, corpus, emit, scratch_home

RNN_BENCH = ROOT.parent / "shared" / "acceptance" / "reference" / "rnn_bench.py"
ANCHOR_CPS = 29_000  # the tutorial port's chars/s where the anchor-minute is one minute


def _grid(name: str, default: str, kind: type) -> list:
    return [kind(x) for x in os.environ.get(name, default).split(",") if x]


def anchor_cps() -> float:
    """The tutorial port's median chars/s on this machine, now (30 s of training)."""
    out = subprocess.run(
        [sys.executable, str(RNN_BENCH), "30", "--ref", "A", "--cell", "lstm"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return float(next(r["cps_median"] for r in rows if r.get("event") == "summary"))


def _text(size: int, folder: Path, env: dict) -> tuple[Path, str]:
    """The first `size` characters of Tiny Shakespeare, or of pysrc past its length."""
    source, name = corpus(), "tinyshakespeare"
    if size > 1_100_000:
        fetched = subprocess.run(
            [*charrnn(), "fetch", "pysrc"], env=env, capture_output=True, text=True, check=True
        )
        source, name = Path(fetched.stdout.strip()), "pysrc"
    path = folder / f"{name}-{size}.txt"
    with open(source, encoding="utf-8") as f:
        path.write_text(f.read(size), encoding="utf-8")
    return path, name


def _cell(text: Path, preset: str, minutes: float, env: dict, run: str) -> dict:
    """Train one cell and score its best checkpoint on the whole held-out tail: the loss, the
    steps made, and for auto the choice it printed; a cell that fails says why, and the grid
    goes on to the next."""
    trained = subprocess.run(
        [*charrnn(), "train", "--corpus", str(text), "--val-fraction", "0.1", "--preset",
         preset, "--max-minutes", f"{minutes:.2f}", "--run", run, "--quiet"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    if trained.returncode:
        return {"error": (trained.stderr.strip().splitlines() or ["no message"])[-1]}
    try:
        out = subprocess.run(
            [*charrnn(), "eval", "--run", run, "--json"], env=env, check=True, capture_output=True
        ).stdout
        folder = Path(env["CHARRNN_HOME"]) / "runs" / run
        with open(folder / "metrics.jsonl", encoding="utf-8") as f:
            steps = max(json.loads(line)["step"] for line in f if line.strip())
        auto = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("auto") or {}
    except (subprocess.CalledProcessError, OSError, ValueError, KeyError) as e:
        return {"error": f"{type(e).__name__}: {e}"}
    return {"val_loss": round(float(json.loads(out)["loss"]), 4), "steps": steps,
            "auto": auto.get("line")}  # fmt: skip


def run() -> None:
    home = Path(scratch_home())
    env = {**os.environ, "CHARRNN_HOME": str(home)}
    sizes = _grid("GRID_SIZES", "50000,200000,1000000,5000000", int)
    budgets = _grid("GRID_BUDGETS", "1,5,20", float)
    presets = _grid("GRID_PRESETS", "auto,cpu,tutorial", str)
    for size in sizes:
        text, name = _text(size, home, env)
        # measured again for each text: a shared machine's speed drifts over the grid's hours
        cps = anchor_cps()
        scale = ANCHOR_CPS / cps
        emit(bench="quality_grid", anchor_cps=round(cps), minutes_per_anchor_minute=round(scale, 3))
        for budget in budgets:
            for preset in presets:
                run_name = f"g-{size}-{budget:g}-{preset}".replace(".", "_")
                cell = _cell(text, preset, budget * scale, env, run_name)
                emit(bench="quality_grid", corpus=name, chars=size, anchor_minutes=budget,
                     minutes=round(budget * scale, 2), preset=preset, **cell)  # fmt: skip
