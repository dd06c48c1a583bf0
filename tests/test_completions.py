"""Shell completion: the committed scripts are current, and TAB completes commands and runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "completions"))
import generate  # noqa: E402


@pytest.mark.parametrize("shell", sorted(generate.FILES))
def test_committed_completion_scripts_are_current(shell):
    committed = (ROOT / "completions" / generate.FILES[shell]).read_text(encoding="utf-8")
    assert committed == generate.script(shell), "stale: run `make completions`"


def _complete_bash(words: str, cword: int) -> list[str]:
    env = {**os.environ, "_CHARRNN_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(cword)}  # fmt: skip
    # completion leaves through sys.exit: what it imported is looked at on the way out
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('heavy:', sorted({'torch', 'numpy'} & set(sys.modules)),"
        " file=sys.stderr))\n"
        "from charrnn_cli.cli import main\nmain([])\nsys.exit('main() came back')"
    )
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines()[-1] == "heavy: []", r.stderr  # TAB never imports torch
    return r.stdout.split()


def test_bash_protocol_completes_a_subcommand():
    assert _complete_bash("charrnn tr", 1) == ["train"]


def test_bash_protocol_completes_run_names(charrnn_home):
    run = charrnn_home / "runs" / "shakes-lstm"
    run.mkdir(parents=True)
    (run / "config.json").write_text('{"model": {}, "train": {}}')
    assert _complete_bash("charrnn sample --run sh", 3) == ["shakes-lstm"]
