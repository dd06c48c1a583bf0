"""Data: encoding a 30 MB corpus (pysrc built from the stdlib), seconds and peak memory, beside
a plain Python per-character loop. Each side runs in its own subprocess for a clean peak."""

from __future__ import annotations

import json
import subprocess
import sys

from benchmarks.common import PEAK, emit, scratch_home

SIZE = 30_000_000

OURS = """
import json, sys, time
from pathlib import Path
from charrnn_cli.data.encode import encode_bytes
data = Path(sys.argv[1]).read_bytes()
t = time.perf_counter(); ids, vocab = encode_bytes(data); dt = time.perf_counter() - t
peak = peak_mb()
print(json.dumps({"seconds": dt, "peak_mb": peak, "vocab": len(vocab), "n": len(ids)}))
"""

PLAIN = """
import json, sys, time
from pathlib import Path
data = Path(sys.argv[1]).read_bytes()
t = time.perf_counter()
text = data.decode("utf-8"); stoi = {c: i for i, c in enumerate(sorted(set(text)))}
ids = [stoi[c] for c in text]
dt = time.perf_counter() - t
peak = peak_mb()
print(json.dumps({"seconds": dt, "peak_mb": peak, "n": len(ids)}))
"""


def _measure(code: str, path: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PEAK + code, path], capture_output=True, check=True)
    return json.loads(out.stdout)


def run() -> None:
    scratch_home()
    from charrnn_cli import corpora

    cf = corpora.fetch("pysrc", max_bytes=SIZE)
    ours, plain = _measure(OURS, str(cf.path)), _measure(PLAIN, str(cf.path))
    mb = cf.size / 1e6
    emit(bench="encode", corpus_mb=round(mb, 1), seconds=round(ours["seconds"], 3),
         peak_mb=round(ours["peak_mb"]), peak_over_file=round(ours["peak_mb"] / mb, 2),
         reference="plain Python per-character loop", reference_seconds=round(plain["seconds"], 2),
         reference_peak_mb=round(plain["peak_mb"]),
         speedup=round(plain["seconds"] / ours["seconds"], 1),
         targets="under 3 s, peak under 10x the file")  # fmt: skip
