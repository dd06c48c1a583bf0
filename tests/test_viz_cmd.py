"""`charrnn viz`: surprise agrees with eval, find ranks, cells and gates render, pages are written,
mistakes get one line, and --help imports no torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from charrnn_cli.commands.viz_common import activation_kind
from charrnn_cli.errors import UsageError
from tests.helpers import TINY

LINES = ['the "cat" sat (on the mat).', "  a dog ran to the log.", "we see (the sea).", "ok"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One tiny run for the module (training is the slow part), copied into each test's home."""
    from charrnn_cli import console
    from charrnn_cli.cli import main

    folder = tmp_path_factory.mktemp("viz")
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(LINES * 100) + "\n", encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHARRNN_HOME", str(folder / "home"))
        console.reset()
        code = main(["train", "--corpus", str(corpus), "--run", "v", *TINY, "--max-steps", "60",
                     "--eval-every", "30", "--quiet"])  # fmt: skip
    assert code == 0
    return folder / "home" / "runs" / "v"


@pytest.fixture
def run(trained, charrnn_home) -> str:
    shutil.copytree(trained, charrnn_home / "runs" / "v")
    return "v"


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("\n".join(LINES[::-1] * 8), encoding="utf-8")
    return path


def test_viz_help_imports_no_torch():
    code = (
        "import sys\nfrom charrnn_cli.cli import main\n"
        "assert main(['viz', '--help']) == 0 and main(['viz', 'cells', '--help']) == 0\n"
        "assert 'torch' not in sys.modules and 'numpy' not in sys.modules"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "surprise" in r.stdout and "--unit" in r.stdout


def test_surprise_json_mean_is_evals_bits_per_char(cli, run, text_file):
    r = cli("viz", "surprise", "--run", run, "--corpus", str(text_file), "--json", "--top", "3")
    assert r.code == 0, r.err
    rows = [json.loads(line) for line in r.out.splitlines()]
    ev = json.loads(cli("eval", "--run", run, "--corpus", str(text_file), "--json").out)
    assert len(rows) == ev["chars"]
    assert sum(x["bits"] for x in rows) / len(rows) == pytest.approx(ev["bits_per_char"], abs=1e-6)
    text = text_file.read_text()
    assert all(text[x["i"]] == x["char"] and len(x["top"]) == 3 for x in rows)
    probs = [t["p"] for t in rows[0]["top"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6


def test_surprise_draws_plain_text_and_writes_a_page(cli, run, text_file, tmp_path):
    r = cli("viz", "surprise", "--run", run, "--text", "the cat sat on the mat.\nthe dog")
    assert r.code == 0, r.err
    assert "\x1b" not in r.out  # NO_COLOR (set for every test) and no terminal: plain text
    assert r.out.startswith("the cat sat on the mat.\n") and "bits/char" in r.out
    page = tmp_path / "s.html"
    r = cli("viz", "surprise", "--run", run, "--corpus", str(text_file), "--html", str(page))
    assert r.code == 0 and r.out.strip() == str(page)
    assert "mean " in page.read_text() and "<pre id=t>" in page.read_text()
    held_out = cli("viz", "surprise", "--run", run, "--json")  # the run's held-out text
    assert held_out.code == 0 and "held-out" in held_out.err and held_out.out.count("\n") > 10


def test_find_ranks_units_by_r_and_takes_a_regex(cli, run, text_file):
    r = cli("viz", "find", "--run", run, "--corpus", str(text_file), "--signal", "line-position",
            "--json", "--top", "5")  # fmt: skip
    assert r.code == 0, r.err
    rows = json.loads(r.out)
    assert len(rows) == 5 and set(rows[0]) == {"layer", "unit", "r", "saturated"}
    assert [abs(x["r"]) for x in rows] == sorted((abs(x["r"]) for x in rows), reverse=True)
    assert all(x["layer"] == 1 and 0 <= x["unit"] < 16 for x in rows)
    table = cli("viz", "find", "--run", run, "--corpus", str(text_file), "--signal", r"\bcat\b")
    assert table.code == 0 and table.out.splitlines()[0].split() == ["layer", "unit", "r",
                                                                      "saturated"]  # fmt: skip
    assert len(table.out.splitlines()) == 11
    for bad, why in (("(oops", "regular expression"), ("zebra", "constant")):
        r = cli("viz", "find", "--run", run, "--corpus", str(text_file), "--signal", bad)
        assert r.code == 2 and why in r.err and r.err.count("\n") == 1


def test_cells_show_units_in_the_terminal_and_on_a_page(cli, run, text_file, tmp_path):
    r = cli("viz", "cells", "--run", run, "--corpus", str(text_file), "--unit", "3",
            "--unit", "7", "--layer", "1")  # fmt: skip
    assert r.code == 0, r.err
    assert "layer 1 unit 3" in r.out and "layer 1 unit 7" in r.out and "\x1b" not in r.out
    page = tmp_path / "c.html"
    r = cli("viz", "cells", "--run", run, "--corpus", str(text_file), "--unit", "3",
            "--html", str(page))  # fmt: skip
    assert r.code == 0, r.err
    body = page.read_text()
    assert "layer 1 unit 3 · given" in body and "line-position r=" in body
    r = cli("viz", "cells", "--run", run, "--corpus", str(text_file), "--layer", "2")
    assert r.code == 2 and "--layer must be 1 to 1" in r.err


def test_gates_table_json_and_plot(cli, run, text_file, tmp_path):
    r = cli("viz", "gates", "--run", run, "--corpus", str(text_file))
    assert r.code == 0, r.err
    assert [line.split()[1] for line in r.out.splitlines()[1:]] == ["input", "forget", "output"]
    rows = json.loads(cli("viz", "gates", "--run", run, "--corpus", str(text_file), "--json").out)
    assert all(0 <= x["below"] <= 1 and len(x["units_above"]) == 16 for x in rows)
    svg = tmp_path / "g.svg"
    r = cli("viz", "gates", "--run", run, "--corpus", str(text_file), "--plot", str(svg))
    assert (
        r.code == 0
        and svg.read_text().startswith("<svg")
        and svg.read_text().count("<circle") >= 48
    )


def test_text_mistakes_get_one_line(cli, run, text_file, tmp_path):
    r = cli("viz", "surprise", "--run", run, "--text", "abc", "--corpus", str(text_file))
    assert r.code == 2 and "not both" in r.err
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"the cat \xff\xfe")
    r = cli("viz", "surprise", "--run", run, "--corpus", str(bad))
    assert r.code == 4 and "not UTF-8 text at byte 8" in r.err
    r = cli("viz", "surprise", "--run", run, "--text", "ZZZ")
    assert r.code == 2 and "fewer than 2 characters" in r.err
    r = cli("viz", "surprise", "--run", run, "--text", "the cat sat", "--max-chars", "5")
    assert r.code == 0 and "only the first 5 characters" in r.err
    r = cli("viz", "surprise", "--run", run, "--text", "the cat ate 3 figs")
    assert r.code == 0 and "3 distinct characters are outside the run's vocabulary" in r.err


def test_the_cell_state_is_an_lstms_only():
    gru = SimpleNamespace(cfg=SimpleNamespace(cell="gru"))
    assert activation_kind(gru, None) == "h"
    with pytest.raises(UsageError, match="no cell state c"):
        activation_kind(gru, "c")
    assert activation_kind(SimpleNamespace(cfg=SimpleNamespace(cell="lstm")), None) == "c"
