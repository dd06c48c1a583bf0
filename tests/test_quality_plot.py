"""benchmarks/quality_plot.py: the grid's JSON lines become one panel per size and one line per
preset, failed cells and anchor lines left out."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from benchmarks import quality_plot


def _line(chars: int, budget: float, preset: str, **cell) -> str:
    return json.dumps({"bench": "quality_grid", "chars": chars, "anchor_minutes": budget,
                       "preset": preset, **cell})  # fmt: skip


LINES = [
    json.dumps({"bench": "quality_grid", "anchor_cps": 20_000}),
    _line(50_000, 5, "auto", val_loss=1.9),
    _line(50_000, 1, "auto", val_loss=2.1),
    _line(50_000, 1, "cpu", val_loss=2.3),
    _line(1_000_000, 1, "tutorial", val_loss=1.8),
    _line(1_000_000, 1, "auto", error="out of memory"),
    _line(50_000, 1, "cpu", val_loss=2.4),  # measured again: the last figure stands
    '{"bench": "quality_grid", "chars": 5',  # the cut-off end of an interrupted grid
]


def test_cells_sort_budgets_and_leave_out_failures_and_cut_off_lines():
    grid = quality_plot.cells(LINES)
    assert grid == {
        50_000: {"auto": [(1.0, 2.1), (5.0, 1.9)], "cpu": [(1.0, 2.4)]},
        1_000_000: {"tutorial": [(1.0, 1.8)]},
    }


def test_the_picture_has_a_panel_per_size_and_a_line_per_preset(tmp_path):
    out = tmp_path / "grid.svg"
    src = tmp_path / "grid.jsonl"
    src.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    quality_plot.main([str(src), str(out)])
    root = ET.fromstring(out.read_text(encoding="utf-8"))
    ns = "{http://www.w3.org/2000/svg}"
    texts = [t.text for t in root.iter(f"{ns}text")]
    assert "50 KB" in texts and "1 MB" in texts
    assert len(list(root.iter(f"{ns}polyline"))) == 3
    ys = {c.find(f"{ns}title").text: float(c.get("cy")) for c in root.iter(f"{ns}circle")}
    assert "auto 50 KB 5 anchor-min: 1.9000" in ys and len(ys) == 4
    # the loss axis points up: auto's lower 5-minute loss sits below its 1-minute point
    assert ys["auto 50 KB 5 anchor-min: 1.9000"] > ys["auto 50 KB 1 anchor-min: 2.1000"]
