"""Regenerate the shell completion scripts from the app: `make completions`.

Each script is what `_CHARRNN_COMPLETE=source_<shell> charrnn` prints; at TAB time it calls
`charrnn` again (whose start-up imports no torch). tests/test_completions.py fails when these
files are stale.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILES = {"bash": "charrnn.bash", "zsh": "_charrnn", "fish": "charrnn.fish"}


def script(shell: str) -> str:
    env = {**os.environ, "_CHARRNN_COMPLETE": f"source_{shell}"}
    code = "from charrnn_cli.cli import main; main([])"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout


def main() -> None:
    for shell, name in FILES.items():
        (HERE / name).write_text(script(shell), encoding="utf-8")
        print(HERE / name)


if __name__ == "__main__":
    main()
