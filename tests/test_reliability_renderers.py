"""Round four, the class "text that reaches a screen or a page" (docs/reliability.md, W5-W6
and W8): every renderer (viz in the terminal, coloured and plain; JSON; the viz pages; the
exported page and its title; the model card) gets every class of character: C0 and C1 controls, ESC
sequences, `</script>`, `<!--`, U+2028/U+2029, bidirectional controls, lone surrogates where
they can arrive (a folder or file name), characters outside the BMP, the page template's
markers and runs of backticks. None is written raw where it would act; the text stays readable;
the page's sampler walks code points and validates its top-k."""

from __future__ import annotations

import json
import os
import re
import shutil
from functools import partial

import pytest
import torch

from charrnn_cli import console
from charrnn_cli.config import ModelConfig
from charrnn_cli.export import card, page
from charrnn_cli.export.folder import Source
from charrnn_cli.export.writer import write
from charrnn_cli.model import CharRNN
from charrnn_cli.sampling import SampleRequest
from charrnn_cli.sampling.generator import SamplingModel, generate
from charrnn_cli.viz import pages, terminal
from tests.helpers import page_sampler

CLASSES = {
    "c0": "a\x00b\x07c\x08d\x0b\x0c\re",
    "esc": "\x1b[31mred\x1b]0;title\x07\x1b[2J",
    "c1": "\x9b31m\x85\x90",
    "del": "x\x7fy",
    "script": "</script><script>alert(1)</script>",
    "comment": "<!-- <script>",
    "separators": "a\u2028b\u2029c",
    "bidi": "\u202eevil\u202c\u2066",
    "astral": "😀𝔸🐍",
    "markers": "__SAMPLER_JS__ __MODEL_JSON__ __TITLE__ __SEED__",
    "backticks": "```` ``` `` `",
}
ALL = "".join(CLASSES.values())
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e"
                 "\u2066-\u2069\ud800-\udfff]")  # fmt: skip
OUR_SGR = re.compile(r"\x1b\[[0-9;]*m")  # the colour codes viz writes itself


def _raw(text: str) -> list[str]:
    return RAW.findall(text)


@pytest.mark.parametrize("name", list(CLASSES))
@pytest.mark.parametrize("colour", [False, True], ids=["plain", "colour"])
def test_viz_in_the_terminal_shows_every_control_as_a_picture(name, colour):
    text = CLASSES[name] + "\nnext line\n"
    n = len(text)
    for shown in (
        terminal.surprise_text(text, [1.0] * n, 1.0, colour),
        terminal.cells_text(text, "unit", [0.5] * n, colour),
    ):
        assert _raw(OUR_SGR.sub("", shown)) == []
        assert "\x1b[31m" not in shown and "\x1b]" not in shown
        kept = [c for c in CLASSES[name] if not RAW.match(c)]
        assert all(c in shown for c in kept)  # the printable characters are all there
    if name == "esc":
        assert "␛[31mred" in terminal.surprise_text(text, [1.0] * n, 1.0, False)


@pytest.mark.parametrize("name", [*CLASSES, "surrogate"])
def test_json_never_carries_a_raw_control_and_reads_back_the_same(name):
    value = {"char": CLASSES.get(name, "a\udcff\ud800b")}
    text = console.json_text(value)
    assert _raw(text) == [] and "\n" not in text
    text.encode("utf-8")  # a lone surrogate cannot fail the write
    assert json.loads(text) == value


def _page_ok(html_text: str, scripts: int) -> None:
    html_text.encode("utf-8")
    assert _raw(html_text.replace("\n", "").replace("\t", "")) == []
    assert html_text.count("</script>") == scripts and "<!--" not in html_text
    assert "\u202e" not in html_text


def test_the_viz_pages_show_every_class_as_text(tmp_path):
    text = ALL + "\n"
    note = "run x, /tmp/\udcffcorpus\x1b[31m.txt"  # a path with a byte that is not UTF-8
    surprise = pages.surprise_page(
        title="t " + ALL, note=note, text=text, bits=[1.0] * len(text),
        top_chars=[["\x1b", "<"]] * len(text), top_p=[[0.5, 0.5]] * len(text), mean=1.0,
    )  # fmt: skip
    cells = pages.cells_page(title=ALL, note=note, text=text,
                             units=[pages.UnitView(ALL, [0.1] * len(text))])  # fmt: skip
    for html_text in (surprise, cells):
        _page_ok(html_text, 2)
        assert "😀" in html_text and "𝔸" in html_text and "␛" in html_text


def _source(name: str, chars: str = "abc 😀𝔸\n") -> Source:
    torch.manual_seed(3)
    cfg = ModelConfig(cell="gru", vocab_size=len(chars), embed_size=6, hidden_size=12, layers=1)
    model = CharRNN(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    return Source(model, chars, {"unigram": [1] * len(chars)}, name, "best", {})


@pytest.mark.parametrize("name", [*CLASSES, "surrogate"])
def test_the_exported_page_keeps_its_template_whatever_the_name(name, tmp_path):
    title = CLASSES.get(name, "x\udcff")
    html_text = page.page_html(_source(f"./models/{title}"))
    _page_ok(html_text, 3)
    plain = page.page_html(_source("./models/plain"))
    for mark in ('id="charrnn-model"', "function matvec", "JSON.parse("):  # each part once
        assert html_text.count(mark) == plain.count(mark) >= 1, mark
    assert "__MODEL_JSON__" not in html_text.split('id="charrnn-model"')[1][:10]
    head = html_text.split("</title>")[0]
    assert "<script" not in head.split("<title>")[1]


@pytest.mark.parametrize("name", [*CLASSES, "surrogate"])
def test_the_model_card_title_and_sample_stay_text(name):
    title = CLASSES.get(name, "x\udcff") + " *bold* [link](x) # h"
    sample = CLASSES.get(name, "") + "```\nafter ```` fence\n"
    cfg = {"cell": "lstm", "layers": 1, "hidden_size": 8, "embed_size": 8, "vocab": list("ab"),
           "held_out": {"loss": 1.0, "bits_per_char": 1.4}, "corpus": {"name": ALL}}  # fmt: skip
    text = card.card(cfg, title, sample, 100)
    text.encode("utf-8")
    assert _raw(text.replace("\n", "").replace("\t", "")) == []
    heading = [line for line in text.splitlines() if line.startswith("# ")]
    assert len(heading) == 1 and "*bold*" not in heading[0] and "[link](x)" not in heading[0]
    lines = text.splitlines()
    start = lines.index(next(line for line in lines if line.endswith("text") and
                             set(line[:-4]) == {"`"}))  # fmt: skip
    bar = lines[start][:-4]
    end = lines.index(bar, start + 1)
    assert "\n".join(lines[start + 1 : end]) == console.visible(sample)
    front = text.split("\n---\n")[0]
    for line in front.splitlines():
        if line.startswith(("corpus: ", "- name: ")):
            assert json.loads(line.split(": ", 1)[1]) in (ALL, title)


def test_a_folder_named_with_a_byte_that_is_not_utf8_exports_its_page_and_card(cli, tmp_path):
    src = _source("m")
    folder = tmp_path / os.fsdecode(b"model-\xff__SAMPLER_JS__")
    write(src, "folder", folder)
    r = cli("export", "--run", str(folder), "--format", "html", "--output", str(tmp_path / "p"))
    assert r.code == 0, r.err
    _page_ok((tmp_path / "p").read_text(encoding="utf-8"), 3)
    r = cli("export", "--run", str(folder), "--output", str(tmp_path / "again"))
    assert r.code == 0, r.err
    heading = [x for x in (tmp_path / "again" / "README.md").read_text().splitlines()
               if x.startswith("# ")]  # fmt: skip
    assert heading == ["# model\\-\ufffd\\_\\_SAMPLER\\_JS\\_\\_"]


NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_page_sampler_walks_code_points_and_validates_top_k(tmp_path):
    src = _source("m")
    path = write(src, "html", tmp_path / "m.html")
    sm = SamplingModel(src.model, src.vocab, src.kind, None, None, src.name)
    for seed in ("a😀b𝔸", "😀😀", "𝔸"):
        request = SampleRequest(prompt=seed, length=40, temperature=0.0, echo=False)
        want = "".join(p.text for p in generate(sm, request))
        assert page_sampler(path, "--seed", seed, "--len", "40") == want, seed
    assert len(list(page_sampler(path, "--predict", "a😀b"))) == 3  # one prediction a code point
    echoed = page_sampler(path, "--seed", "a😀", "--len", "9", echo_seed=True)
    assert echoed == "a😀" + page_sampler(path, "--seed", "a😀", "--len", "9")  # as charrnn sample
    drawn = partial(page_sampler, path, "--seed", "a", "--len", "30", "--temperature", "1",
                    "--random-seed", "1")  # fmt: skip
    every = drawn()
    for bad in ("-3", "abc", "0", "1e9"):
        assert drawn("--top-k", bad) == every, bad  # ignored: all characters, as with no top-k
    assert drawn("--top-k", "2.5") == drawn("--top-k", "2")
