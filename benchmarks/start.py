"""The start state: after eight common speaker names Tiny Shakespeare always has a newline; how
often does a model that starts afresh (as `charrnn sample --seed NAME:` does) give one?

For the default run and a `--preset cpu --max-steps 1500` run (10% held out), trained with the
learned start state and 1% restarts (today's defaults) beside the same runs trained as before
(zero start, no restarts) in the same process: the mean P(newline) over the names, the newlines
in 200 samples (25 a name) and the held-out loss. BENCH_START_STEPS shortens the cpu run.
"""

from __future__ import annotations

import json
import os
import subprocess

import torch

from benchmarks.common import charrnn, corpus, emit, scratch_home

NAMES = ["GLOUCESTER:", "DUKE VINCENTIO:", "ROMEO:", "MENENIUS:", "PETRUCHIO:", "CORIOLANUS:",
         "KING RICHARD III:", "ISABELLA:"]  # fmt: skip
BEFORE = ["--start-state", "zero", "--restart-prob", "0"]


@torch.inference_mode()
def p_newline(run: str) -> float:
    from charrnn_cli.storage.checkpoint import load_run

    model, vocab, _, _ = load_run(run, "best", "cpu")
    ps = []
    for name in NAMES:
        logits, _ = model(torch.tensor([[vocab.index(c) for c in name]]))  # a fresh start
        ps.append(float(torch.softmax(logits[0, -1].float(), -1)[vocab.index("\n")]))
    return sum(ps) / len(ps)


def sampled_newlines(run: str, env: dict) -> int:
    n = 0
    for name in NAMES:
        out = subprocess.run(
            [*charrnn(), "sample", "--run", run, "--seed", name, "--len", "1", "--num", "25",
             "--separator", "|", "--no-echo-seed", "--random-seed", "1"],
            env=env, check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        n += out.count("\n")
    return n


def held_out(run: str, env: dict) -> float:
    out = subprocess.run([*charrnn(), "eval", "--run", run, "--json"], env=env, check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    return round(json.loads(out)["loss"], 4)


def run() -> None:
    home = scratch_home()
    env = {**os.environ, "CHARRNN_HOME": home}
    steps = os.environ.get("BENCH_START_STEPS", "1500")
    setups = {"default": [], "cpu": ["--preset", "cpu", "--max-steps", steps]}
    for setup, args in setups.items():
        figures = {}
        for kind, extra in (("start", []), ("zero", BEFORE)):
            name = f"{setup}-{kind}"
            subprocess.run(
                [*charrnn(), "train", "--corpus", str(corpus()), "--val-fraction", "0.1", "--run",
                 name, "--quiet", *args, *extra],
                env=env, check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            figures[kind] = (p_newline(name), sampled_newlines(name, env), held_out(name, env))
        (p, n, loss), (p0, n0, loss0) = figures["start"], figures["zero"]
        emit(
            bench="start", setup=setup, p_newline=round(p, 3), newlines_of_200=n, held_out=loss,
            reference="zero start, no restarts (before)", reference_p_newline=round(p0, 3),
            reference_newlines_of_200=n0, reference_held_out=loss0,
            held_out_change=round(loss - loss0, 4), target=180,
        )  # fmt: skip
