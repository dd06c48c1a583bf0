"""Export: the time `charrnn export` takes and the size it writes for each format, and the page
sampler's speed under node (chars/s, greedy and at temperature 0.8), beside charrnn's own
sampler (numpy, one stream) on the same model in the same run, for the default model (2x128
LSTM) and the cpu preset's (2x256). The runs are trained for one step (speed and size do not
depend on the weights' values)."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from benchmarks.common import charrnn, corpus, emit, scratch_home

N = 5000  # characters sampled per measurement
MODELS = {"default": [], "cpu": ["--preset", "cpu"]}
FORMATS = {"folder": "", "onnx": ".onnx", "html": ".html"}


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*")) if path.is_dir() else path.stat().st_size


def _export_times(run: str, out: Path, repeats: int = 3) -> dict[str, dict]:
    found = {}
    for fmt, suffix in FORMATS.items():
        target, times = out / f"{run}{suffix}", []
        for _ in range(repeats):
            started = time.perf_counter()
            subprocess.run([*charrnn(), "export", "--run", run, "--format", fmt, "--output",
                            str(target), "--force"], check=True, capture_output=True)  # fmt: skip
            times.append(time.perf_counter() - started)
        found[fmt] = {"seconds": round(statistics.median(times), 2), "bytes": _size(target)}
    return found


def _node_rate(page: Path, temperature: float, repeats: int = 3) -> float:
    from charrnn_cli.export.page import __file__ as page_py

    sampler = Path(page_py).with_name("sampler.js")
    rates = []
    for r in range(repeats):
        done = subprocess.run(
            ["node", str(sampler), str(page), "--seed", "ROMEO:", "--len", str(N),
             "--temperature", str(temperature), "--random-seed", str(r), "--bench"],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        rates.append(json.loads(done.stderr.strip().splitlines()[-1])["chars_per_sec"])
    return statistics.median(rates)


def _python_rate(run: str, temperature: float, repeats: int = 3) -> float:
    from charrnn_cli.sampling import SampleRequest, generate, load

    sm = load(run, device="cpu")
    rates = []
    for r in range(repeats):
        request = SampleRequest("ROMEO:", length=N, temperature=temperature, random_seed=r)
        started = time.perf_counter()
        for _ in generate(sm, request):
            pass
        rates.append(N / (time.perf_counter() - started))
    return statistics.median(rates)


def run() -> None:
    home = Path(scratch_home())
    out = home / "exports"
    out.mkdir()
    for model, args in MODELS.items():
        subprocess.run([*charrnn(), "train", "--corpus", str(corpus()), "--run", model,
                        "--max-steps", "1", "--eval-chars", "2000", "--quiet", *args],
                       check=True, capture_output=True)  # fmt: skip
        found = _export_times(model, out)
        fields = {"bench": "export", "model": model}
        for fmt, figures in found.items():
            fields[f"{fmt}_seconds"], fields[f"{fmt}_bytes"] = figures["seconds"], figures["bytes"]
        fields["safetensors_bytes"] = (out / model / "model.safetensors").stat().st_size
        if shutil.which("node"):
            for t in (0.0, 0.8):
                js, py = _node_rate(out / f"{model}.html", t), _python_rate(model, t)
                key = "greedy" if t == 0 else f"t{t:g}"
                fields[f"page_{key}_chars_per_sec"] = round(js)
                fields[f"python_{key}_chars_per_sec"] = round(py)
                fields[f"page_vs_python_{key}"] = round(js / py, 2)
        fields["target_page_chars_per_sec"] = 5000 if model == "default" else None
        emit(**fields)
