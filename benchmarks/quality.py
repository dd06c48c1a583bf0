"""Quality at a budget: `charrnn train --preset cpu --max-minutes 5` on Tiny Shakespeare (last
10% held out), beside the tutorial port given the same minutes. BENCH_MINUTES scales both."""

from __future__ import annotations

import json
import os
import subprocess

from benchmarks import reference
from benchmarks.common import charrnn, corpus, emit, minutes, scratch_home


def run() -> None:
    budget = minutes(5.0)
    home = scratch_home()
    env = {**os.environ, "CHARRNN_HOME": home}
    subprocess.run(
        [*charrnn(), "train", "--corpus", str(corpus()), "--val-fraction", "0.1",
         "--preset", "cpu", "--max-minutes", str(budget), "--run", "q", "--quiet"],
        env=env, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    out = subprocess.run(
        [*charrnn(), "eval", "--run", "q", "--json"], env=env, check=True, capture_output=True
    ).stdout
    ours = json.loads(out)["loss"]
    from charrnn_cli.data import encode

    data = encode.load(corpus())
    train_ids, val_ids = reference.split(data.ids, 0.1)
    model, _ = reference.train(train_ids, len(data.vocab), budget * 60)
    ref = reference.evaluate(model, val_ids)
    emit(bench="quality", minutes=budget, preset="cpu", held_out="last 10% of tinyshakespeare",
         val_loss=round(ours, 4), val_bpc=round(ours / reference.LN2, 4),
         reference="tutorial port, same minutes", reference_val_loss=round(ref, 4),
         reference_val_bpc=round(ref / reference.LN2, 4),
         improvement_nats=round(ref - ours, 4), target=1.47)  # fmt: skip
