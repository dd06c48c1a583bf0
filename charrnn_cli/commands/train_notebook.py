"""Training's progress in a Jupyter notebook: one output updated in place, no ANSI escapes.

`charrnn.train` called in a notebook draws here instead of on stderr (where a rich bar would
print a line a refresh, or escapes): the lines `charrnn train` prints (the start, each
evaluation, the end) and below them a progress bar with the step's figures, as HTML with the
same text for viewers that show no HTML (a notebook stored with its outputs, nbclient).
`render` takes the records as `commands.train.render` does.
"""

from __future__ import annotations

import html
import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from charrnn_cli.commands.train_render import _end_text, _eval_text, _start_text, _step_text

if TYPE_CHECKING:
    from charrnn_cli.training.train import Event

REDRAW_S = 0.25  # the least time between two redraws for steps (evaluations redraw at once)


def in_notebook() -> bool:
    """True inside a Jupyter kernel (or Colab's), where stderr is not a terminal."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None  # type: ignore[attr-defined]
    kind = type(shell)
    return kind.__name__ == "ZMQInteractiveShell" or "google.colab" in kind.__module__


class _Output:
    """The lines so far and the bar, shown as one display that each `draw` replaces."""

    def __init__(self) -> None:
        from IPython.display import display

        self.lines: list[str] = []
        self.done, self.total, self.figures = 0, 0, ""
        self.handle: Any = display(self._bundle(), raw=True, display_id=True)

    def _bundle(self) -> dict[str, str]:
        bar = f"step {self.done}/{self.total}  {self.figures}".rstrip()
        text = "\n".join([*self.lines, bar] if self.total else self.lines)
        rows = "".join(f"<div>{html.escape(line)}</div>" for line in self.lines)
        meter = (
            f'<div><progress value="{self.done}" max="{max(self.total, 1)}" '
            f'style="width: 40%; vertical-align: middle"></progress> {html.escape(bar)}</div>'
            if self.total
            else ""
        )
        return {
            "text/plain": text,
            "text/html": f'<div style="font-family: monospace">{rows}{meter}</div>',
        }

    def draw(self) -> None:
        if self.handle is not None:
            self.handle.update(self._bundle(), raw=True)


def render(records: Iterable[Event], quiet: bool) -> Event | None:
    """Show the records in the notebook's output; return the last one."""
    last = None
    out = None if quiet else _Output()
    next_draw = 0.0
    for rec in records:
        last = rec
        if out is None:
            continue
        if rec.kind == "start":
            out.lines.append(_start_text(rec))
            out.done, out.total = rec.step, rec.total_steps
        elif rec.kind == "step":
            out.done, out.figures = rec.step, _step_text(rec, short=True)
            if time.monotonic() < next_draw and rec.step != rec.total_steps:
                continue
        elif rec.kind == "eval":
            out.lines.append(_plain(_eval_text(rec)))
        elif rec.kind == "skip":
            out.lines.append(f"step {rec.step}: loss not finite, step skipped")
        elif rec.kind == "end":
            out.done = rec.step
            out.lines.append(_end_text(rec))
        else:
            continue
        out.draw()
        next_draw = time.monotonic() + REDRAW_S
    return last


def _plain(markup: str) -> str:
    """The text of rich markup (`[green](best)[/]` -> `(best)`)."""
    from rich.text import Text

    return Text.from_markup(markup).plain
