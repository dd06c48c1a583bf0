"""`charrnn viz` in the terminal: the text with a background colour per character, or plain text
with a row of marks under each line where colour is off (a pipe, `NO_COLOR`, a dumb terminal),
so no escape code ever reaches a file. The text's own control characters (ESC, NUL, CR, C1,
bidirectional controls) are shown as pictures (console.visible), never written raw.
Torch-free; the colours are the page's (viz/pages.py).
"""

from __future__ import annotations

import math
import os
from typing import IO

from charrnn_cli.console import visible
from charrnn_cli.viz.pages import (
    ACT_LEVELS,
    BITS_LEVELS,
    BITS_STEP,
    act_colour,
    act_level,
    bits_colour,
    bits_level,
)

RESET = "\x1b[0m"
BLOCKS = "▁▂▃▄▅▆▇█"  # activation -1 .. +1 in the plain form
TAB = 8


def use_colour(stream: IO[str]) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
    if os.environ.get("NO_COLOR", "") != "" or os.environ.get("TERM") == "dumb":
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def _bg(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"\x1b[48;2;{r};{g};{b}m\x1b[38;2;0;0;0m"


def _coloured(text: str, colours: list[str | None]) -> str:
    """Each character on its colour; a newline shows as a coloured ↵ before the line break."""
    out = []
    for ch, colour in zip(text, colours, strict=True):
        shown = "↵" if ch == "\n" else visible(ch)  # ESC, CR, NUL... never raw: pictures
        out.append(shown if colour is None else _bg(colour) + shown + RESET)
        if ch == "\n":
            out.append("\n")
    return "".join(out)


def _with_marks(text: str, marks: list[str]) -> str:
    """Each line of text (tabs expanded) followed by a line with one mark under each character;
    a newline's mark goes one column past the end of its line."""
    out, line, under = [], [], []
    for ch, mark in zip(text + "\n", [*marks, " "], strict=True):
        if ch == "\n":
            under.append(mark)
            out.append("".join(line).rstrip("\n"))
            out.append("".join(under).rstrip())
            line, under = [], []
            continue
        width = TAB - len(line) % TAB if ch == "\t" else 1
        line.append(" " * width if ch == "\t" else visible(ch))
        under.append(mark.ljust(width))
    if text.endswith("\n"):
        out = out[:-2]  # the sentinel newline added an empty last line
    return "\n".join(out)


def surprise_text(text: str, bits: list[float | None], mean: float, colour: bool) -> str:
    """The text coloured by surprisal, then a legend and the mean."""
    levels = [bits_level(b) for b in bits]
    scored = sum(lv is not None for lv in levels)
    summary = f"mean {mean:.4f} bits/char over {scored:,} characters"
    if colour:
        body = _coloured(text, [None if lv is None else bits_colour(lv) for lv in levels])
        swatches = "".join(
            _bg(bits_colour(k)) + f" {k * BITS_STEP:g} " + RESET for k in range(0, BITS_LEVELS, 2)
        )
        return f"{body}\n\nbits (-log2 p): {swatches} and more   {summary}"
    marks = [" " if b is None or not math.isfinite(b) else str(min(9, round(b))) for b in bits]
    legend = (
        "under each character: its surprisal in bits, rounded (9: 9 or more; blank: not scored)"
    )
    return f"{_with_marks(text, marks)}\n\n{legend}\n{summary}"


def cells_text(text: str, label: str, values: list[float | None], colour: bool) -> str:
    """One unit's activation along the text: -1 blue, 0 white, +1 red (or ▁ to █ in plain)."""
    levels = [act_level(v) for v in values]
    if colour:
        body = _coloured(text, [None if lv is None else act_colour(lv) for lv in levels])
        swatches = "".join(
            _bg(act_colour(k)) + f" {k / 20 - 1:+g} " + RESET for k in range(0, ACT_LEVELS, 10)
        )
        return f"{label}\n{body}\nactivation: {swatches}"
    top = len(BLOCKS) - 1
    marks = [" " if lv is None else BLOCKS[round(lv / (ACT_LEVELS - 1) * top)] for lv in levels]
    legend = f"under each character: activation after it, {BLOCKS[0]} -1 ... {BLOCKS[-1]} +1"
    return f"{label}\n{_with_marks(text, marks)}\n{legend}"
