"""Options that several commands share, declared once (torch-free: completion reads them)."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from charrnn_cli import store

RunOption = Annotated[
    str | None,
    typer.Option(
        help="Run: a name, a unique prefix or latest [latest].",
        autocompletion=store.complete_run_name,
    ),
]
CheckpointOption = Annotated[
    Literal["best", "last"], typer.Option(help="Which checkpoint of the run.")
]
DeviceOption = Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")]
