"""Run the benchmark suite: `python -m benchmarks [NAME ...]` (all by default; `make bench`).

Every benchmark prints JSON lines with its figures and the ratio against a reference measured
in the same run. BENCH_MINUTES scales the quality budget (5 by default: the targets assume it).
"""

from __future__ import annotations

import sys

from benchmarks import (
    data,
    ddp,
    export,
    finetune,
    lines,
    memory,
    profile,
    quality,
    quality_grid,
    sample_quality,
    samples,
    sampling,
    scale,
    serve,
    start,
    startup,
    throughput,
)

SUITE = {
    "startup": startup.run,
    "throughput": throughput.run,
    "sampling": sampling.run,
    "sample_quality": sample_quality.run,
    "samples": samples.run,
    "lines": lines.run,
    "start": start.run,
    "data": data.run,
    "memory": memory.run,
    "ddp": ddp.run,
    "quality": quality.run,
    "quality_grid": quality_grid.run,
    "scale": scale.run,
    "finetune": finetune.run,
    "serve": serve.run,
    "export": export.run,
    "profile": profile.run,
}


ON_DEMAND = ("quality_grid",)  # hours: run only when named


def main(names: list[str]) -> None:
    for name in names or [n for n in SUITE if n not in ON_DEMAND]:
        if name not in SUITE:
            sys.exit(f"unknown benchmark {name!r}; choose from {', '.join(SUITE)}")
        SUITE[name]()


if __name__ == "__main__":
    main(sys.argv[1:])
