"""Loss curves: drawn in the terminal with Unicode braille dots, or to a PNG with matplotlib.

No torch, no numpy: `charrnn runs show` stays instant.
"""

from __future__ import annotations

import io
import math
from typing import Any

from charrnn_cli.errors import CharrnnError

Series = dict[str, list[tuple[float, float]]]
MARKS = {"train": "·", "held-out": "●"}


def ascii_chart(series: Series, width: int = 64, height: int = 16) -> str:
    """A chart of y over x with a labelled y axis; one mark per series."""
    points = [(x, y) for pts in series.values() for x, y in pts if math.isfinite(y)]
    if not points:
        return "(no metrics yet)"
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1
    grid = [[" "] * width for _ in range(height)]
    for label, pts in series.items():
        mark = MARKS.get(label, "*")
        for x, y in pts:
            if not math.isfinite(y):
                continue
            col = round((x - x0) / (x1 - x0) * (width - 1))
            row = height - 1 - round((y - y0) / (y1 - y0) * (height - 1))
            if grid[row][col] == " " or mark == "●":
                grid[row][col] = mark
    lines = []
    for i, row in enumerate(grid):
        y = y1 - (y1 - y0) * i / (height - 1)
        label = f"{y:7.3f} ┤" if i % 4 == 0 or i == height - 1 else "        │"
        lines.append(label + "".join(row))
    lines.append("        └" + "─" * width)
    lines.append(f"         step {x0:g}" + " " * max(1, width - 16 - len(f"{x1:g}")) + f"{x1:g}")
    legend = "   ".join(f"{MARKS.get(k, '*')} {k} loss (nats/char)" for k in series)
    lines.append("         " + legend)
    return "\n".join(lines)


def write_png(target: Any, series: Series, title: str = "") -> None:
    """Write the curves to a PNG at a checked path (outputs.check); says how to get matplotlib
    when it is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CharrnnError(
            "--plot needs matplotlib: pip install 'charrnn[plot]' (or pip install matplotlib)"
        ) from None
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    draw(ax, series, title)
    fig.tight_layout()
    from charrnn_cli.storage import outputs

    png = io.BytesIO()
    fig.savefig(png, format="png")
    plt.close(fig)
    outputs.write_bytes(target, png.getvalue())


def draw(ax: Any, series: Series, title: str = "") -> None:
    """The curves on a matplotlib Axes (the PNG's, or the figure `Model.plot` returns)."""
    for label, pts in series.items():
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, label=label, marker="o" if label == "held-out" else None)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/char)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
