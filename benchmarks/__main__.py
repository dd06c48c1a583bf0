"""Run the benchmark suite: `python -m benchmarks [startup ...]` (all by default)."""

from __future__ import annotations

import sys

from benchmarks import startup

SUITE = {"startup": startup.run}


def main(names: list[str]) -> None:
    for name in names or list(SUITE):
        if name not in SUITE:
            sys.exit(f"unknown benchmark {name!r}; choose from {', '.join(SUITE)}")
        SUITE[name]()


if __name__ == "__main__":
    main(sys.argv[1:])
