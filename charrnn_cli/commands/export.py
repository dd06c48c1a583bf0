"""`charrnn export`: write a run as a portable folder, an ONNX graph or a one-file web page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from charrnn_cli import console
from charrnn_cli.commands.options import CheckpointOption, RunOption


def export(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write (a folder, .onnx or .html).")
    ],
    run: RunOption = None,
    checkpoint: CheckpointOption = "best",
    format: Annotated[
        Literal["folder", "onnx", "html"],
        typer.Option(
            "--format",
            help="folder: model.safetensors + config.json + a model card; onnx: one graph "
            "(needs charrnn[onnx]); html: one page that samples in the browser.",
        ),
    ] = "folder",
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists.")] = False,
) -> None:
    """Export a run (or an exported folder) to use it outside charrnn; prints the path."""
    from charrnn_cli.export.writer import export_run

    console.out(str(export_run(run, checkpoint, format, output, force)))
