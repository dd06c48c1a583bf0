"""The gate-saturation picture of Karpathy, Johnson and Fei-Fei (2015) as a standalone SVG: one
panel per layer, one dot per unit and gate at (share of time below 0.1, share above 0.9).
Torch-free, no plotting library: the file opens in any browser.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

PANEL, PAD = 260, 40  # panel side and margin, pixels
COLOURS = {"input": "#1f77b4", "forget": "#2ca02c", "output": "#d62728",
           "reset": "#9467bd", "update": "#ff7f0e"}  # fmt: skip


@dataclass(frozen=True)
class GatePoints:
    layer: int
    gate: str
    low: list[float]  # per unit: share of characters below 0.1 (left-saturated)
    high: list[float]  # per unit: share above 0.9 (right-saturated)


def _panel(x0: int, layer: int, points: list[GatePoints]) -> list[str]:
    y0, side = PAD, PANEL
    out = [
        f'<rect x="{x0}" y="{y0}" width="{side}" height="{side}" fill="#fff" stroke="#999"/>',
        # no unit can lie beyond low + high = 1
        f'<line x1="{x0}" y1="{y0}" x2="{x0 + side}" y2="{y0 + side}" stroke="#ddd"/>',
        f'<text x="{x0 + side / 2}" y="{y0 - 8}" text-anchor="middle">layer {layer}</text>',
        f'<text x="{x0 + side / 2}" y="{y0 + side + 28}" text-anchor="middle">'
        "fraction left-saturated (&lt; 0.1)</text>",
    ]
    for tick in (0, 0.5, 1):
        out.append(f'<text x="{x0 + tick * side}" y="{y0 + side + 14}" text-anchor="middle" '
                   f'font-size="10">{tick:g}</text>')  # fmt: skip
        out.append(f'<text x="{x0 - 4}" y="{y0 + (1 - tick) * side + 3}" text-anchor="end" '
                   f'font-size="10">{tick:g}</text>')  # fmt: skip
    for p in points:
        colour = COLOURS.get(p.gate, "#555")
        for lo, hi in zip(p.low, p.high, strict=True):
            cx, cy = x0 + lo * side, y0 + (1 - hi) * side
            out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.5" fill="{colour}" '
                       'fill-opacity="0.55"/>')  # fmt: skip
    return out


def gates_svg(points: list[GatePoints], title: str) -> str:
    """One panel per layer; a legend of the gates below."""
    layers = sorted({p.layer for p in points})
    width = PAD + len(layers) * (PANEL + PAD) + 20
    height = PAD + PANEL + 70
    body = [f'<text x="{PAD}" y="18" font-weight="bold">{html.escape(title)}</text>',
            f'<text x="{PAD - 28}" y="{PAD + PANEL / 2}" text-anchor="middle" '
            f'transform="rotate(-90 {PAD - 28} {PAD + PANEL / 2})">'
            "fraction right-saturated (&gt; 0.9)</text>"]  # fmt: skip
    for j, layer in enumerate(layers):
        body += _panel(PAD + j * (PANEL + PAD), layer, [p for p in points if p.layer == layer])
    x = PAD
    for gate in dict.fromkeys(p.gate for p in points):
        body.append(
            f'<circle cx="{x}" cy="{height - 14}" r="4" fill="{COLOURS.get(gate, "#555")}"/>'
        )
        body.append(f'<text x="{x + 8}" y="{height - 10}">{html.escape(gate)} gate</text>')
        x += 110
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">'
        f'<rect width="100%" height="100%" fill="#fafafa"/>{"".join(body)}</svg>\n'
    )
