"""The notebook in docs/ (the Python API's walk-through) is committed with its outputs, its
picture included, and still runs: executed here with nbclient and ipykernel on a short budget
(its `parameters` cell replaced in memory), without an error, with a plot, a progress display
that reached the end, and no raw ANSI escapes in any output."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "api.ipynb"
SHORT = "MINUTES = 0.05\nPYSRC_BYTES = 200_000\n"  # 3 seconds of training on 200 kB


def outputs(nb) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def pngs(nb) -> int:
    return sum("image/png" in o.get("data", {}) for o in outputs(nb))


def texts(nb) -> str:
    """Every text an output holds: streams, and the text of displays and results."""
    return "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs(nb))


def test_the_committed_notebook_holds_its_outputs_and_its_plot():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), "run it in order"
    assert pngs(nb) >= 1, "commit it with its outputs"
    assert "finished" in texts(nb) or "time budget reached" in texts(nb)
    assert not [o for o in outputs(nb) if o.get("output_type") == "error"]
    assert "\x1b[" not in texts(nb)


@pytest.mark.slow
def test_the_notebook_runs_on_a_short_budget(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    [params] = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    params.source = SHORT
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    errors = [o for o in outputs(nb) if o.get("output_type") == "error"]
    assert not errors, f"{errors[0]['ename']}: {errors[0]['evalue']}"
    assert pngs(nb) >= 1, "no plot"
    shown = texts(nb)
    assert "\x1b[" not in shown, "raw ANSI escapes in an output"
    # the live display, as its last update left it: the start line and the end
    assert "training on" in shown and "time budget reached at step" in shown
