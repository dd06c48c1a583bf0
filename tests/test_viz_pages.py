"""The viz pages, read with the standard library's HTML parser: the text is there in order, one
element a character with its colour class, the data parses, nothing is fetched."""

from __future__ import annotations

import re

from charrnn_cli.viz import pages
from tests.helpers import VIZ_TEXT as TEXT
from tests.helpers import Page, surprise_page


def _network(page: str) -> bool:
    pattern = r"""(src|href)\s*=\s*["']?\s*(https?:)?//|@import|fetch\(|https?://"""
    return re.search(pattern, page, re.I) is not None


def test_surprise_page_holds_each_character_in_order_with_its_colour():
    page = surprise_page()
    p = Page(page)
    assert p.chars == list(TEXT)  # one element a character, escaped and unescaped right
    assert p.classes[0] == "u" and p.classes[1] == "s1" and p.classes[19] == "s16"
    assert p.classes[TEXT.index("\n")].endswith(" nl")
    assert p.data["bits"][0] is None and p.data["bits"][3] == 1.5
    assert p.data["topc"][:3] == ["e", "<", "\n"] and p.data["topp"][:3] == [500, 250, 125]
    assert "mean 1.2345 bits/char" in page
    assert not _network(page)
    assert page.count("</script>") == 2  # the text's own "</script>" cannot end a script


def test_cells_page_keeps_every_unit_and_colours_the_first():
    values = [[(i % 41) / 20 - 1 for i in range(len(TEXT))], [None] * len(TEXT)]
    units = [pages.UnitView("layer 1 unit 3 · quote r=+0.40", values[0]),
             pages.UnitView("layer 2 unit 0 · given", values[1])]  # fmt: skip
    page = pages.cells_page(title="t", note="n", text=TEXT, units=units)
    p = Page(page)
    assert p.chars == list(TEXT)
    assert p.classes[0] == "a0" and p.classes[20] == "a20" and p.classes[40] == "a40"
    assert p.buttons == [u.label for u in units]
    levels = [u["levels"] for u in p.data["units"]]
    assert levels[0][:3] == "ABC" and set(levels[1]) == {pages.UNKNOWN}
    assert all(len(lv) == len(TEXT) for lv in levels)
    assert not _network(page)


def test_levels_clip_and_skip_missing_values():
    assert pages.bits_level(100.0) == pages.BITS_LEVELS - 1
    assert pages.bits_level(float("nan")) is None
    assert pages.act_level(-3.0) == 0 and pages.act_level(0.0) == 20
    assert pages.act_colour(20) == "#ffffff"


def test_a_long_text_stays_a_page_of_modest_size():
    text = ("for i in range(10):\n    print(i)\n" * 1000)[:30000]
    page = surprise_page(text)
    assert len(Page(page).chars) == 30000
    assert len(page.encode()) < 60 * len(text)  # under 2 MB for 30,000 characters
