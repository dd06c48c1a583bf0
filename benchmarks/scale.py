"""Scale: training on corpora of 10 MB, 100 MB and 1 GB (Python's sources repeated, built on
the fly in a temp folder, never kept), beside the previous approach (benchmarks/before.py:
whole-file encoding, int64 streams, evaluations of the whole held-out tail) in the same run.

Each side runs in its own process with a fresh CHARRNN_HOME: its peak resident memory, the
time from process start to the first step (encoding included), per step, and one in-training
evaluation. Ours also runs a second time on the cached encoding. The previous approach's
evaluation is estimated from ours at the same speed (its tail is 5% of the corpus: minutes).
`BENCH_SCALE_SIZES=10,100` picks sizes in MB; a size whose previous approach would need more
than 3/4 of the memory available is measured for ours only. With matplotlib installed, a PNG of
memory against corpus size is written (its path is printed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from benchmarks.common import PEAK, ROOT, emit
from charrnn_cli.config import TrainConfig

STEPS = 20
BEFORE_BYTES_PER_BYTE = 11  # what the previous approach needed (9.8 measured), with a margin

CHILD = """
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[4])
from pathlib import Path
from charrnn_cli import config, corpora
from charrnn_cli.data import encode
from charrnn_cli.training.job import CorpusInfo, Job
from charrnn_cli.training.train import train
side, path, steps = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
cf = corpora.resolve(str(path))  # as `charrnn train --corpus PATH` does: hashed, checked
if side == "before":
    from benchmarks import before
    before.install()
    data = before.load(cf.path)
else:
    data = encode.load(cf.path, cf.sha256)
evals = steps if side != "before" else 10**9  # the previous whole-tail evaluation: minutes
model_cfg, train_cfg = config.build({"max_steps": steps, "eval_every": evals})
record = CorpusInfo("c", str(path), data.sha256, "bench")
job = Job(f"scale-{side}", model_cfg, train_cfg, data, record)
out = {}
for rec in train(job):
    now = time.perf_counter()
    if rec.kind == "start":
        t_start, out["val_chars"] = now, rec.info["val_chars"]
    elif rec.kind == "step" and rec.step == steps:
        t_end = now
        out.update(first_step_s=t_start - t0 + (t_end - t_start) / steps,
                   per_step_ms=1000 * (t_end - t_start) / steps)
        if side == "before":
            break
    elif rec.kind == "eval":
        out["eval_s"] = now - t_end
        break
out["peak_mb"] = peak_mb()
print(json.dumps(out))
"""


def make_corpus(path: Path, size: int) -> None:
    """About `size` bytes of text: Python's standard library sources, each copy headed by a
    line naming it (the acceptance check's corpus)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    parts = []
    for p in sorted(root.rglob("*.py")):
        if "site-packages" not in p.parts:
            try:
                parts.append(p.read_bytes().decode("utf-8"))
            except (OSError, UnicodeDecodeError):
                pass
    lib = "".join(parts).encode("utf-8")
    written, copy = 0, 0
    with path.open("wb") as out:
        while written < size:
            head = f"# ---- copy {copy} of the standard library ----\n".encode()
            part = lib[: size - written]
            out.write(head + part)
            written, copy = written + len(head) + len(part), copy + 1


def _side(side: str, path: Path, home: str) -> dict:
    env = {**os.environ, "CHARRNN_HOME": home}
    cmd = [sys.executable, "-c", PEAK + CHILD, side, str(path), str(STEPS), str(ROOT)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode:
        return {"failed": (out.stderr.strip().splitlines() or ["?"])[-1][:200]}
    return json.loads(out.stdout.splitlines()[-1])


def _available_mb() -> float:
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("inf")


def _rounded(d: dict) -> dict:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in d.items()}


def measure(size_mb: int, folder: Path) -> dict:
    path = folder / f"corpus-{size_mb}mb.txt"
    make_corpus(path, size_mb * 1_000_000)
    home = tempfile.mkdtemp(prefix="charrnn-scale-", dir=folder)
    ours, cached = _side("ours", path, home), _side("ours", path, home)
    row = {"corpus_mb": size_mb, "ours": _rounded(ours), "cached": _rounded(cached)}
    if BEFORE_BYTES_PER_BYTE * size_mb < _available_mb() * 0.75:
        before = _side("before", path, tempfile.mkdtemp(prefix="charrnn-scale-", dir=folder))
        if "val_chars" in before and "eval_s" in ours:  # at our evaluation's speed
            rate = min(ours["val_chars"], TrainConfig().eval_chars) / ours["eval_s"]
            before["eval_s_estimated"] = before["val_chars"] / rate
        row["before"] = _rounded(before)
    else:
        row["before"] = {"skipped": f"would need ~{BEFORE_BYTES_PER_BYTE * size_mb:,} MB"}
    path.unlink()
    for scratch in folder.glob("charrnn-scale-*"):  # the encoding caches: as big as the corpus
        shutil.rmtree(scratch, ignore_errors=True)
    return row


def plot(rows: list[dict], folder: Path) -> Path | None:
    """Peak memory against corpus size, both approaches (None without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for side, label in (("ours", "memory-mapped (now)"), ("before", "whole file, int64 streams")):
        pts = [(r["corpus_mb"], r[side]["peak_mb"]) for r in rows if "peak_mb" in r[side]]
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", label=label)
    ax.set(xscale="log", yscale="log", xlabel="corpus (MB)", ylabel="peak RSS of training (MB)")
    ax.set_title("charrnn train: memory against corpus size")
    ax.legend(loc="upper left")
    path = folder / "scale.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def run() -> None:
    sizes = [int(s) for s in os.environ.get("BENCH_SCALE_SIZES", "10,100,1000").split(",")]
    folder = Path(tempfile.mkdtemp(prefix="charrnn-bench-scale-"))
    rows = []
    for size in sizes:
        start = time.perf_counter()
        row = measure(size, folder)
        rows.append(row)
        emit(bench="scale", steps=STEPS, seconds=round(time.perf_counter() - start, 1), **row,
             reference="previous approach: whole-file encode, int64 streams")  # fmt: skip
    png = plot(rows, folder)
    if png is not None:
        emit(bench="scale", plot=str(png))


if __name__ == "__main__":
    run()
