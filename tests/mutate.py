"""`make mutate`: mutation testing (mutmut) of the modules behind docs/reliability.md's rows,
each module against its own tests only, so that one run takes minutes, not hours.

The modules and their tests are one table, `[tool.charrnn.mutate]` in pyproject.toml
(module path = [test files]); a module that moves is renamed there. Each module is mutated in a
copy of the project under .mutate/NAME/ (ignored by git) whose pyproject.toml gets the
`[tool.mutmut]` section for that module alone; its figures (mutants made, killed, survived, with
no test that reaches them, timed out) are printed as a Markdown table and kept in
.mutate/summary.json, each survivor listed (`cd .mutate/NAME && mutmut show MUTANT` shows it).

    python tests/mutate.py [MODULE ...] [--jobs N]    # default: every module of the table
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".mutate"
# pytest in each mutant's worker: quiet, no cache, stop at the first failure (a kill is a kill),
# in mutmut's own process (no xdist workers: mutmut counts what each test runs)
PYTEST_ARGS = ["-p", "no:cacheprovider", "-q", "-x", "-p", "no:randomly", "-n", "0"]
ALSO = ("docs", "completions", "README.md")  # what some tests read besides the code
KILLED = {"killed", "timeout", "caught by type check", "segfault"}


def table() -> dict[str, list[str]]:
    """The modules to mutate and the tests of each, from pyproject.toml."""
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return data["tool"]["charrnn"]["mutate"]


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def prepare(module: str, tests: list[str]) -> Path:
    """A fresh copy of the project whose mutmut mutates `module` against `tests` alone."""
    work = WORK / re.sub(r"[^\w]+", "-", module.removesuffix(".py"))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name in ("charrnn_cli", "tests", *ALSO):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif (ROOT / name).exists():
            shutil.copy2(ROOT / name, work / name)
    config = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    config += (
        "\n[tool.mutmut]\n"
        'source_paths = ["charrnn_cli"]\n'
        f"only_mutate = {_toml_list([module])}\n"
        f"pytest_add_cli_args_test_selection = {_toml_list(tests)}\n"
        f"pytest_add_cli_args = {_toml_list(PYTEST_ARGS)}\n"
        f"also_copy = {_toml_list(list(ALSO))}\n"
    )
    (work / "pyproject.toml").write_text(config, encoding="utf-8")
    (work / "mutants").mkdir()  # there before mutmut starts: on its PYTHONPATH (see `mutate`)
    return work


def mutate(module: str, tests: list[str], jobs: int) -> dict:
    """Run mutmut on one module; its figures."""
    work = prepare(module, tests)
    # the tests' subprocesses (`python -m charrnn_cli ...`) import the mutated copy too
    env = {**os.environ, "PYTHONPATH": str(work / "mutants")}
    env.pop("CI", None)
    start = time.monotonic()
    mutmut = [sys.executable, "-m", "mutmut"]
    log = work / "mutmut.log"
    with open(log, "w", encoding="utf-8") as out:
        done = subprocess.run([*mutmut, "run", "--max-children", str(jobs)], cwd=work, env=env,
                              stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    listed = subprocess.run([*mutmut, "results", "--all", "true"], cwd=work, env=env,
                            capture_output=True, text=True)  # fmt: skip
    status: dict[str, str] = {}
    for line in listed.stdout.splitlines():
        name, _, what = line.strip().rpartition(": ")
        if name:
            status[name] = what
    counts = {"made": len(status), "killed": 0, "survived": 0, "no tests": 0, "other": 0}
    for what in status.values():
        key = "killed" if what in KILLED else what if what in counts else "other"
        counts[key] += 1
    return {
        "module": module, "tests": tests, **counts,
        "survivors": sorted(n for n, w in status.items() if w == "survived"),
        "untested": sorted(n for n, w in status.items() if w == "no tests"),
        "minutes": round((time.monotonic() - start) / 60, 1), "exit": done.returncode,
        "log": str(log.relative_to(ROOT)),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="modules of the table (default: all)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    known = table()
    unknown = [m for m in args.modules if m not in known]
    if unknown:
        print(f"not in [tool.charrnn.mutate]: {', '.join(unknown)}", file=sys.stderr)
        return 2
    WORK.mkdir(exist_ok=True)
    summary_path = WORK / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    for module in args.modules or list(known):
        print(f"mutating {module} against {' '.join(known[module])}", file=sys.stderr)
        summary[module] = mutate(module, known[module], args.jobs)
        summary_path.write_text(json.dumps(summary, indent=1) + "\n")
    print("| module | mutants | killed | survived | no test reaches | killed % | minutes |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for module, r in summary.items():
        tried = r["killed"] + r["survived"]
        share = f"{100 * r['killed'] / tried:.0f}%" if tried else "-"
        print(f"| {module} | {r['made']} | {r['killed']} | {r['survived']} | {r['no tests']} "
              f"| {share} | {r['minutes']} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
