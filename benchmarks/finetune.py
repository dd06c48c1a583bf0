"""Fine-tuning versus training from scratch, and what the parent forgets.

A parent (the default LSTM 2x128) trains on Tiny Shakespeare for BENCH_PARENT_STEPS steps (1500,
about 2 minutes on one core: a fixed count, so every run of this benchmark has the same parent);
then the Debian licence texts (`/usr/share/common-licenses`, concatenated: digits, brackets and
symbols Shakespeare never wrote) train for BENCH_FINETUNE_STEPS steps (300 by default) from
scratch and fine-tuned from the parent at several fractions of the default --lr. Each line gives
the held-out loss on the licence texts and on Tiny Shakespeare's held-out tail (the parent's
figure there is the "before").
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from benchmarks.common import charrnn, corpus, emit, scratch_home

LR = 1e-2  # the default (tutorial) preset's --lr; the fractions below scale it
FRACTIONS = (1.0, 0.5, 0.3, 0.1)  # BENCH_FINETUNE_FRACTIONS="2,1,0.7" tries others
LICENCES = Path("/usr/share/common-licenses")


def _charrnn(env: dict, *args: str) -> str:
    done = subprocess.run([*charrnn(), *args], env=env, check=True, capture_output=True, text=True)
    return done.stdout


def _loss(env: dict, run: str, *text: str) -> float:
    return round(json.loads(_charrnn(env, "eval", "--run", run, "--json", *text))["loss"], 4)


def run() -> None:
    parent_steps = os.environ.get("BENCH_PARENT_STEPS", "1500")
    steps = int(os.environ.get("BENCH_FINETUNE_STEPS", "300"))
    home = Path(scratch_home())
    env = {**os.environ, "CHARRNN_HOME": str(home)}
    new = home / "licenses.txt"
    new.write_bytes(b"".join(p.read_bytes() for p in sorted(LICENCES.iterdir()) if p.is_file()))
    text = corpus().read_text(encoding="utf-8")
    tail = home / "tinyshakespeare-held-out.txt"  # the parent's held-out split (data.split)
    tail.write_text(text[-max(2, int(len(text) * 0.05)) :], encoding="utf-8")
    _charrnn(env, "train", "--corpus", str(corpus()), "--run", "parent", "--max-steps",
             parent_steps, "--eval-every", "500", "--quiet")  # fmt: skip
    before = _loss(env, "parent", "--corpus", str(tail))
    common = ["--corpus", str(new), "--max-steps", str(steps), "--eval-every", "100", "--quiet"]
    fractions = os.environ.get("BENCH_FINETUNE_FRACTIONS")
    fractions = [float(f) for f in fractions.split(",")] if fractions else FRACTIONS
    runs = {"scratch": []} | {f"fine-tuned-{f:g}": ["--init-from", "parent"] for f in fractions}
    lrs = {"scratch": LR} | {f"fine-tuned-{f:g}": LR * f for f in fractions}
    for name, extra in runs.items():
        _charrnn(env, "train", "--run", name, "--lr", f"{lrs[name]:g}", *common, *extra)
        emit(bench="finetune", run=name, lr=lrs[name], steps=steps, parent_steps=int(parent_steps),
             licences_held_out=_loss(env, name), tinyshakespeare_held_out=_loss(
                 env, name, "--corpus", str(tail)), parent_tinyshakespeare_held_out=before,
             )  # fmt: skip
