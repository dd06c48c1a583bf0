"""Peak memory of training (resident set, MB) at the default and large configurations, each in
its own subprocess, beside the tutorial port training for the same number of steps."""

from __future__ import annotations

import json
import subprocess
import sys

from benchmarks.common import PEAK, ROOT, corpus, emit

STEPS = 60

OURS = """
import json, sys
sys.path.insert(0, sys.argv[3])
from benchmarks.common import train_records
given = json.loads(sys.argv[1]); given.update(max_steps=int(sys.argv[2]), eval_every=10**9)
for rec in train_records(given):
    pass
print(json.dumps({"peak_mb": peak_mb()}))
"""

REF = """
import json, sys, time
sys.path.insert(0, sys.argv[3])
from benchmarks import reference
from charrnn_cli.data.encode import load
from pathlib import Path
d = load(Path(sys.argv[1]))
reference.train(d.ids, len(d.vocab), float(sys.argv[2]))
print(json.dumps({"peak_mb": peak_mb()}))
"""

CONFIGS = {"default": {}, "large": {"hidden_size": 512, "batch_size": 64, "seq_len": 64}}


def _peak(code: str, *args: str) -> float:
    out = subprocess.run([sys.executable, "-c", PEAK + code, *args, str(ROOT)], capture_output=True,
                         check=True)  # fmt: skip
    return json.loads(out.stdout.splitlines()[-1])["peak_mb"]


def run() -> None:
    ref = _peak(REF, str(corpus()), "10")
    for name, given in CONFIGS.items():
        ours = _peak(OURS, json.dumps(given), str(STEPS))
        emit(bench="train_memory", config=name, steps=STEPS, peak_mb=round(ours),
             reference="tutorial port, 10 s of training", reference_peak_mb=round(ref),
             ratio=round(ours / ref, 2))  # fmt: skip
