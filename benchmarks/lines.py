"""Sampling lines: lines and characters per second of `--lines 10000` at --parallel 1, 8 and 64,
beside the single-stream sampler in the same run (target: 64 streams at least 4x its chars/s),
and the share of novel lines at temperatures 0.5, 0.8 and 1.0. The list corpus: the function
names defined in this Python's standard library, one a line, shuffled with a fixed seed; the
default model trained on it for BENCH_MINUTES (2 by default)."""

from __future__ import annotations

import os
import random
import re
import statistics
import subprocess
import sysconfig
import time
from pathlib import Path

from benchmarks.common import charrnn, emit, minutes, scratch_home

LINES = 10_000
SINGLE_CHARS = 100_000


def list_corpus(path: Path) -> Path:
    """The function names defined in the standard library's sources, one a line."""
    names: set[str] = set()
    for source in Path(sysconfig.get_paths()["stdlib"]).rglob("*.py"):
        try:
            text = source.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        names.update(re.findall(r"^\s*def ([A-Za-z_][A-Za-z0-9_]*)", text, re.M))
    ordered = sorted(names)
    random.Random(0).shuffle(ordered)
    path.write_text("\n".join(ordered) + "\n", encoding="utf-8")
    return path


def _timed(fn, repeats: int = 3) -> tuple[float, object]:
    """The median seconds of `fn()` and its last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def run() -> None:
    from charrnn_cli.sampling.lines import Tally, make_rules, sample_lines
    from charrnn_cli.sampling.samples import Strategy, sample
    from charrnn_cli.storage import store
    from charrnn_cli.storage.checkpoint import load_run

    home = scratch_home()
    corpus = list_corpus(Path(home) / "names.txt")
    budget = minutes(2.0)
    train = f"train --corpus {corpus} --run names --max-minutes {budget} --eval-every 500 --quiet"
    env = {**os.environ, "CHARRNN_HOME": home}
    subprocess.run([*charrnn(), *train.split()], env=env, check=True, stdout=subprocess.DEVNULL)
    model, vocab, _, _ = load_run("names", "best", "cpu")
    info = store.read_config("names")["corpus"]
    newline = vocab.index("\n")

    plain, novel = make_rules(info, LINES), make_rules(info, 2000, novel=True)  # corpus read once

    def lines(parallel: int, rules, temperature: float = 1.0):
        tally = Tally()
        made = sample_lines(
            model, vocab, "", rules, Strategy(temperature), tally, parallel=parallel, random_seed=1
        )
        return list(made), tally

    def text() -> str:  # the single-stream sampler, from the same line start
        return "".join(sample(model, vocab, [newline], SINGLE_CHARS, Strategy(1.0)))

    single = SINGLE_CHARS / _timed(text)[0]
    figures = {}
    for parallel in (1, 8, 64):
        seconds, (out, tally) = _timed(lambda p=parallel: lines(p, plain), repeats=1)
        chars = sum(len(line) + 1 for line in out)
        figures[f"parallel_{parallel}"] = dict(
            lines_per_sec=round(len(out) / seconds),
            chars_per_sec=round(chars / seconds),
            dropped=tally.tries - tally.kept,
        )
    best = figures["parallel_64"]["chars_per_sec"]
    emit(
        bench="lines",
        lines=LINES,
        minutes=budget,
        corpus_lines=len(corpus.read_text().split()),
        **figures,
        reference="single-stream sampler (sample --len)",
        reference_chars_per_sec=round(single),
        ratio=round(best / single, 2),
        ratio_vs_parallel_1=round(best / figures["parallel_1"]["chars_per_sec"], 2),
        target=4,
    )
    shares = {}
    for temperature in (0.5, 0.8, 1.0):
        _, tally = lines(64, novel, temperature)
        shares[f"t{temperature}"] = round(tally.kept / max(1, tally.kept + tally.in_corpus), 3)
    emit(
        bench="lines_novel",
        lines=2000,
        novel_share=shares,
        note="share of the sampled lines that are not in the training list",
    )
