"""`charrnn info`: versions, where files live, and the device training would use."""

from __future__ import annotations

import platform
from typing import Annotated

import typer

from charrnn_cli import __version__, console
from charrnn_cli.storage import paths


def info(
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Versions, the corpus and run folders, and the device training would use."""
    from charrnn_cli import device

    data = {
        "charrnn": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "corpora_dir": str(paths.cache_dir()),
        "runs_dir": str(paths.data_dir()),
        **device.info(),
    }
    if json_out:
        console.out_json(data)
        return
    width = max(len(k) for k in data)
    console.out("\n".join(f"{k:<{width}}  {v}" for k, v in data.items()))
