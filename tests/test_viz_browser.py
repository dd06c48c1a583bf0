"""The viz pages in a real browser: headless Chromium runs their script without error, the DOM it
leaves holds the text in order, and `#unit=N` switches the cells page to another unit.
Skipped where Chromium is not installed (Debian: apt-get install chromium), except with CI set:
.ci/run installs it, and there a missing browser fails these tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from charrnn_cli.viz import pages
from tests.helpers import VIZ_TEXT as TEXT
from tests.helpers import Page, require_tool, surprise_page

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(autouse=True)
def _chromium() -> None:
    require_tool(CHROMIUM, "chromium", "apt-get install chromium")


def _dom(page: Path, tmp_path: Path, fragment: str = "") -> str:
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000",
            "--dump-dom", page.as_uri() + fragment]  # fmt: skip
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_surprise_page_runs_its_script_and_keeps_the_text(tmp_path):
    page = tmp_path / "s.html"
    page.write_text(surprise_page(), encoding="utf-8")
    dom = _dom(page, tmp_path)
    assert 'data-ready="1"' in dom  # the script ran to its end
    assert Page(dom).chars == list(TEXT)


def test_cells_page_switches_units_from_the_address(tmp_path):
    first = [(i % 41) / 20 - 1 for i in range(len(TEXT))]
    second = [None if c == "x" else 0.95 for c in TEXT]
    units = [pages.UnitView("a", first), pages.UnitView("b", second)]
    page = tmp_path / "c.html"
    page.write_text(pages.cells_page(title="t", note="n", text=TEXT, units=units))
    before = Page(_dom(page, tmp_path))
    assert before.classes[:3] == ["a0", "a1", "a2"]
    after = Page(_dom(page, tmp_path, "#unit=1"))
    assert after.chars == list(TEXT)
    want = ["u" if c == "x" else "a39" for c in TEXT]
    assert [c.replace(" nl", "") for c in after.classes] == want
    assert after.classes[TEXT.index("\n")] == "a39 nl"
