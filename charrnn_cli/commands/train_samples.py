"""The samples `charrnn train` draws as it goes: their options, and how one is shown on stderr.

A sample record (train.py yields one after an evaluation, see sampling/during_training.py) is
drawn under the evaluation's line: each line of its text indented behind a bar, with every
control character but the newline shown as a visible symbol (`visible`), so text learnt from a
corpus that holds ESC sequences or BEL can never drive the terminal. Torch-free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from charrnn_cli import config
from charrnn_cli.commands.options import escaped

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from charrnn_cli.training.train_state import Event

PANEL_SAMPLES = "Samples while training"


def _opt(help: str, **kw: Any) -> Any:
    return typer.Option(help=escaped(help), rich_help_panel=PANEL_SAMPLES, show_default=False, **kw)


SampleEveryOption = Annotated[
    int | None,
    _opt(
        "Draw a short sample every N steps; 0: never [at each held-out evaluation].",
        **config.limits("sample_every"),
    ),
]
SampleLenOption = Annotated[
    int | None, _opt("Characters a sample draws [200].", **config.limits("sample_len"))
]
SampleSeedOption = Annotated[
    str | None, _opt("Text each sample starts from [none: the start state alone].")
]
SampleTemperatureOption = Annotated[
    float | None, _opt("The samples' temperature [0.8].", **config.limits("sample_temperature"))
]


def visible(text: str) -> str:
    """`text` with its control characters (all but the newline) as visible symbols, as viz
    shows them (console.visible: ESC as ␛, BEL as ␇, a C1 or bidirectional control as �)."""
    from charrnn_cli import console

    return console.visible(text, keep="\n")


def sample_text(rec: Event, bar: str = "│") -> Text:
    """A sample record as shown under its evaluation: each line behind an indented bar."""
    from rich.text import Text

    lines = visible(rec.text or "").split("\n")
    body = "\n".join(f"  {bar} {line}" for line in lines)
    return Text(body, style="dim")  # a Text: no markup, no emoji codes, no highlighting


def show_sample(rec: Event, where: Console | None = None) -> None:
    """Print a sample record on stderr (or on `where`, a live display's console)."""
    from charrnn_cli import console

    (where or console.err()).print(sample_text(rec), soft_wrap=True)


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def list_samples(name: str, json_out: bool) -> None:
    """`charrnn runs show NAME --samples`: the run's samples in step order, as a table (on a
    terminal or not: the text is escaped either way) or a JSON list; none: `[]` or a note."""
    from charrnn_cli import console
    from charrnn_cli.sampling import kept

    problems: list[str] = []
    rows = kept.read(name, problems)
    for problem in problems:
        console.warn(problem)
    if json_out:
        console.out_json(rows)
        return
    if not rows:
        console.log(f"run {name!r} kept no samples (trained before samples, or --sample-every 0)")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for col, justify in (("step", "right"), ("held-out", "right"), ("temp", "right")):
        table.add_column(col, justify=justify, no_wrap=True)
    table.add_column("text", overflow="fold")
    for r in rows:
        temperature = r.get("temperature")
        shown = "-" if temperature is None else f"{temperature:g}"
        table.add_row(str(r["step"]), _loss(r.get("val_loss")), shown, visible(r["text"]))
    with console.pipe_guard():
        Console(highlight=False, emoji=False).print(table)


def latest_sample(name: str) -> str | None:
    """The tail of `charrnn runs show`: the run's last sample, escaped (None: it has none)."""
    from charrnn_cli.sampling import kept

    last = kept.latest(name)
    if last is None:
        return None
    head = f"latest sample at step {last['step']}"
    if last.get("val_loss") is not None:
        head += f" (held-out {last['val_loss']:.4f} nats/char)"
    lines = visible(last["text"]).split("\n")
    return "\n".join([f"{head}:", *(f"  │ {line}" for line in lines)])
