"""The quality grid as a picture: `python -m benchmarks.quality_plot GRID.jsonl OUT.svg`.

Reads the JSON lines `python -m benchmarks quality_grid` printed and draws one panel per text
size: held-out loss (nats/char, lower is better) against the budget in anchor-minutes, one line
per preset. Torch-free, no plotting library: the SVG opens in any browser and on GitHub.
"""

from __future__ import annotations

import html
import json
import math
import sys
from pathlib import Path

W, H, PAD = 240, 220, 66  # panel width and height, margin (the title and legend above), pixels
COLOURS = {"auto": "#d62728", "cpu": "#1f77b4", "tutorial": "#7f7f7f"}


def cells(lines: list[str]) -> dict[int, dict[str, list[tuple[float, float]]]]:
    """{chars: {preset: [(anchor-minutes, loss), ...]}} from the grid's lines (failed cells and
    the anchor lines are left out)."""
    grid: dict[int, dict[str, dict[float, float]]] = {}
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:  # not a cell, or the cut-off last line of an interrupted grid
            continue
        if isinstance(row, dict) and "val_loss" in row:
            points = grid.setdefault(row["chars"], {}).setdefault(row["preset"], {})
            # a cell measured again (grids run in parts and joined) keeps its last figure
            points[float(row["anchor_minutes"])] = float(row["val_loss"])
    return {
        size: {p: sorted(v.items()) for p, v in by.items()} for size, by in sorted(grid.items())
    }


def _size(chars: int) -> str:
    return f"{chars / 1e6:g} MB" if chars >= 1_000_000 else f"{chars / 1e3:g} KB"


def _panel(x0: float, chars: int, lines: dict[str, list[tuple[float, float]]]) -> list[str]:
    budgets = sorted({b for pts in lines.values() for b, _ in pts})
    losses = [v for pts in lines.values() for _, v in pts]
    lo, hi = min(losses) - 0.05, max(losses) + 0.05
    span = math.log(budgets[-1] / budgets[0]) if len(budgets) > 1 else 1.0

    def x(b: float) -> float:
        return x0 + 20 + (W - 40) * (math.log(b / budgets[0]) / span if len(budgets) > 1 else 0.5)

    def y(v: float) -> float:
        return PAD + H - H * (v - lo) / (hi - lo)

    out = [
        f'<rect x="{x0}" y="{PAD}" width="{W}" height="{H}" fill="#fff" stroke="#999"/>',
        f'<text x="{x0 + W / 2}" y="{PAD - 10}" text-anchor="middle">{_size(chars)}</text>',
    ]
    for b in budgets:
        out.append(f'<text x="{x(b):.1f}" y="{PAD + H + 16}" text-anchor="middle">{b:g}</text>')
    for v in (lo + 0.05, hi - 0.05):
        out.append(f'<text x="{x0 - 4}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
    for preset, pts in lines.items():
        colour = COLOURS.get(preset, "#000")
        path = " ".join(f"{x(b):.1f},{y(v):.1f}" for b, v in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out += [
            f'<circle cx="{x(b):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}">'
            f"<title>{html.escape(preset)} {_size(chars)} {b:g} anchor-min: {v:.4f}</title>"
            "</circle>"
            for b, v in pts
        ]
    return out


def svg(grid: dict[int, dict[str, list[tuple[float, float]]]], title: str) -> str:
    """The whole picture: a panel per size, a legend, and the axes' names."""
    width = PAD + len(grid) * (W + PAD)
    body = [
        f'<text x="{PAD}" y="18" font-weight="bold">{html.escape(title)}</text>',
        f'<text x="{width / 2}" y="{PAD + H + 34}" text-anchor="middle">'
        "budget, anchor-minutes (log scale)</text>",
    ]
    for i, (chars, lines) in enumerate(grid.items()):
        body += _panel(PAD + i * (W + PAD), chars, lines)
    presets = sorted({p for lines in grid.values() for p in lines})
    for i, preset in enumerate(presets):
        lx = PAD + 90 * i  # a row of its own under the title
        colour = COLOURS.get(preset, "#000")
        body.append(f'<rect x="{lx}" y="28" width="12" height="12" fill="{colour}"/>')
        body.append(f'<text x="{lx + 16}" y="38">{html.escape(preset)}</text>')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{PAD + H + 44}" '
        'font-family="sans-serif" font-size="11">\n' + "\n".join(body) + "\n</svg>\n"
    )


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.exit("usage: python -m benchmarks.quality_plot GRID.jsonl OUT.svg")
    grid = cells(Path(argv[0]).read_text(encoding="utf-8").splitlines())
    if not grid:
        sys.exit(f"{argv[0]}: no measured cells")
    out = Path(argv[1])
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(svg(grid, "held-out loss, nats/char (lower is better)"), encoding="utf-8")
    tmp.replace(out)


if __name__ == "__main__":
    main(sys.argv[1:])
