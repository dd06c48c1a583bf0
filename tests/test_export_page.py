"""`export --format html`: the page's JavaScript sampler, run by node, draws the greedy text of
charrnn's own sampler for every cell; in headless Chromium the address fragment generates on load
with nothing fetched; a byte run is refused in one line."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from charrnn_cli.config import ModelConfig
from charrnn_cli.errors import UsageError
from charrnn_cli.export import page
from charrnn_cli.export.folder import Source
from charrnn_cli.export.writer import write
from charrnn_cli.model import CharRNN
from charrnn_cli.sampling import SampleRequest
from charrnn_cli.sampling.generator import SamplingModel, generate
from tests.helpers import need_tool, page_sampler, require_tool, train_tiny

NODE = shutil.which("node")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
VOCAB = "abcdefghij \n"
needs_node = pytest.mark.usefixtures("node")


@pytest.fixture
def node() -> str:
    """node's path; a missing node skips, or fails under CI (.ci/run installs it)."""
    return need_tool("node")


def _source(cell: str, layers: int = 2, chars: str = VOCAB, **kw) -> Source:
    torch.manual_seed(3)
    cfg = ModelConfig(cell=cell, vocab_size=len(chars), embed_size=6, hidden_size=20,
                      layers=layers, **kw)  # fmt: skip
    model = CharRNN(cfg).eval()
    with torch.no_grad():  # larger weights: peaked distributions
        for p in model.parameters():
            p.mul_(2.0)
    return Source(model, chars, {"unigram": [1] * len(chars)}, "m", "best", {})


def _python(src: Source, seed: str, length: int, temperature: float = 0.0) -> str:
    sm = SamplingModel(src.model, src.vocab, src.kind, None, None, src.name)
    request = SampleRequest(prompt=seed, length=length, temperature=temperature, echo=False)
    return "".join(p.text for p in generate(sm, request))


@needs_node
@pytest.mark.parametrize(("cell", "start"), [("lstm", "learned"), ("gru", "learned"),
                                             ("rnn", "zero")])  # fmt: skip
def test_the_page_predicts_what_charrnn_predicts_at_every_position(cell, start, tmp_path):
    src = _source(cell, start_state=start)
    if src.model.start is not None:
        with torch.no_grad():
            src.model.start.normal_()
    path = write(src, "html", tmp_path / "m.html")
    rng = np.random.default_rng(0)
    text = "".join(rng.choice(list(VOCAB), 400))
    with torch.no_grad():
        logits, _ = src.model(torch.tensor([[VOCAB.index(c) for c in text]]))
    want = "".join(VOCAB[i] for i in logits[0].argmax(-1).tolist())
    assert len(set(want)) > 3  # the predictions follow the text: the state is carried
    assert page_sampler(path, "--predict", text) == want
    greedy = _python(src, "abc", 300)
    assert page_sampler(path, "--seed", "abc", "--len", "300", "--temperature", "0") == greedy


@needs_node
def test_a_random_seed_gives_the_same_draw_and_top_k_1_is_greedy(tmp_path):
    src = _source("lstm", layers=1)
    path = write(src, "html", tmp_path / "m.html")
    drawn = [page_sampler(path, "--seed", "ab", "--len", "200", "--temperature", "1",
                   "--random-seed", str(s)) for s in (7, 7, 8)]  # fmt: skip
    assert drawn[0] == drawn[1] != drawn[2] and len(drawn[0]) == 200
    top1 = page_sampler(path, "--seed", "ab", "--len", "200", "--temperature", "1", "--top-k", "1")
    assert top1 == _python(src, "ab", 200)
    unseeded = page_sampler(path, "--len", "50", "--temperature", "1", "--random-seed", "1")
    assert len(unseeded) == 50


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return train_tiny(tmp_path_factory.mktemp("page"), "r", steps=150)


@needs_node
def test_an_exported_run_s_page_continues_as_sample_greedy(trained, charrnn_home, cli, tmp_path):
    shutil.copytree(trained, charrnn_home / "runs" / "r")
    out = tmp_path / "r.html"
    assert cli("export", "--run", "r", "--format", "html", "--output", str(out)).code == 0
    greedy = cli("sample", "--run", "r", "--seed", "the ", "--greedy", "--len", "200",
                 "--no-echo-seed")  # fmt: skip
    assert page_sampler(out, "--seed", "the ", "--len", "200") == greedy.out
    assert len(set(greedy.out)) >= 5  # a trained model's greedy text: words, not one letter
    text = out.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//|https?://""", text)


def test_the_fragment_generates_on_load_in_a_browser(tmp_path):
    chromium = require_tool(CHROMIUM, "chromium", "apt-get install chromium")
    src = _source("gru", layers=1)
    path = write(src, "html", tmp_path / "m.html")
    want = _python(src, "a b", 120)
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000",
         "--dump-dom", f"file://{path}#seed=a%20b&len=120&temperature=0"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    found = re.search(r'<pre id="output">(.*?)</pre>', done.stdout, re.S)
    assert found, done.stderr[-500:]
    import html

    assert html.unescape(found[1]) == "a b" + want


def test_a_byte_run_or_a_huge_model_is_refused_in_one_line(tmp_path, monkeypatch):
    from charrnn_cli.vocab import BYTES

    with pytest.raises(UsageError, match="reads bytes"):
        write(_source("gru", layers=1, chars=BYTES, vocab="bytes"), "html", tmp_path / "b.html")
    monkeypatch.setattr(page, "MAX_PARAMETERS", 100)
    with pytest.raises(UsageError, match="at most 100 parameters"):
        write(_source("gru", layers=1), "html", tmp_path / "c.html")
    assert list(tmp_path.iterdir()) == []
