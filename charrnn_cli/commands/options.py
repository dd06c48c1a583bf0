"""Options that several commands share, declared once (torch-free: completion reads them)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import typer

from charrnn_cli import config
from charrnn_cli.storage import store

INT_MAX = config.INT_MAX  # every whole-number option's largest value: the type's limit (int64)

DEVICES = "auto, cpu, cuda, cuda:N or mps"
PANEL_RUN = "Run"  # `charrnn train --help` groups its options in panels


def escaped(help: str) -> str:
    """Help text as Typer's rich formatting shows it: a default in brackets ("[cosine]") would
    be taken for a markup tag and vanish."""
    return help.replace("[", "\\[")


def open_range(low: float, high: float) -> Any:
    """A callback refusing values outside the open interval (low, high), for the options whose
    bounds are themselves refused: Typer's `min`/`max` would show `[low<=x<=high]` in the help
    (and Typer has no open bounds), so the help text says the interval instead."""

    def check(value: float | None) -> float | None:
        if value is not None and not low < value < high:
            raise typer.BadParameter(f"{value:g} is not inside ({low:g}, {high:g})")
        return value

    check.bounds = (low, high)  # type: ignore[attr-defined]  # for the tests of every bound
    return check


def _run(help: str, **kw: Any) -> Any:
    return typer.Option(help=escaped(help), autocompletion=store.complete_run_name, **kw)


RunOption = Annotated[
    str | None,
    _run("Run: a name, a unique prefix, latest, or an exported folder's PATH [latest]."),
]
# `charrnn train` names a run to start (or to --resume), so no prefix or `latest` there
NewRunOption = Annotated[
    str | None,
    _run(
        "Run name (default: <corpus>-<cell>-<date>-<time>).",
        rich_help_panel=PANEL_RUN,
        show_default=False,
    ),
]
CheckpointOption = Annotated[
    Literal["best", "last"], typer.Option(help="Which checkpoint of the run.")
]
DeviceOption = Annotated[str, typer.Option(help=f"{DEVICES}.")]
# `charrnn train`'s: None when not given, so --resume keeps the stored device
TrainDeviceOption = Annotated[
    str | None,
    typer.Option(help=escaped(f"{DEVICES} [auto]."), rich_help_panel=PANEL_RUN, show_default=False),
]
# `charrnn train --init-from`: the parent run to fine-tune (lineage.py)
InitFromOption = Annotated[
    str | None,
    _run(
        "Fine-tune: start from RUN[:best|last]'s weights (best by default) on --corpus. The "
        "model's shape is the parent's; new characters are appended to its vocabulary. --lr "
        "is the preset's, as from scratch: lower rates learnt the new text more slowly "
        "(measured: docs/finetune.md).",
        rich_help_panel=PANEL_RUN,
        show_default=False,
        metavar="RUN[:best|last]",
    ),
]
