"""The Python API: importing it leaves torch out, its names are listed, the documented example
runs, and it gives what the CLI gives: the same samples for the same seed, the greedy text of
`sample --greedy`, the figures of `eval --corpus`, an exported folder that loads back."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import charrnn_cli
from charrnn_cli import api
from charrnn_cli.errors import CharrnnError, UsageError
from tests.helpers import train_tiny

ROOT = Path(__file__).resolve().parents[1]
MARKERS = re.compile(r"<!-- api-example -->\s*```python\n(.*?)```\s*<!-- /api-example -->", re.S)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return train_tiny(tmp_path_factory.mktemp("api"), "r")


@pytest.fixture
def run(trained, charrnn_home) -> str:
    shutil.copytree(trained, charrnn_home / "runs" / "r")
    return "r"


def example() -> str:
    """The API example of README.md, or of docs/format.md while the README has none."""
    for doc in ("README.md", "docs/format.md"):
        found = MARKERS.search((ROOT / doc).read_text(encoding="utf-8"))
        if found:
            return found[1]
    raise AssertionError("no <!-- api-example --> block in README.md or docs/format.md")


def test_importing_the_package_does_not_import_torch_and_names_the_api():
    code = (
        "import sys, charrnn_cli as c, charrnn_cli.export, charrnn_cli.export.card; c.load; "
        "c.Model; from charrnn_cli.cli import main; main(['export', '--help']); "
        "assert 'torch' not in sys.modules and 'numpy' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert set(api.__all__) <= set(charrnn_cli.__all__)
    for name in charrnn_cli.__all__:
        assert getattr(charrnn_cli, name) is not None
    with pytest.raises(AttributeError):
        charrnn_cli.nothing_here  # noqa: B018


def test_the_documented_example_runs(run, tmp_path, tiny_text, capsys):
    (tmp_path / "corpus.txt").write_text(tiny_text, encoding="utf-8")
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        exec(compile(example(), "api-example", "exec"), {})
    finally:
        os.chdir(cwd)
    assert (tmp_path / "my-model" / "model.safetensors").is_file()
    assert len(capsys.readouterr().out) >= 100
    called = set(re.findall(r"\bm\.(\w+)\(", example())) | set(
        re.findall(r"charrnn\.(\w+)\(", example())
    )
    assert called <= {*charrnn_cli.__all__, *vars(api.Model)}


def test_generate_is_the_cli_s_text(run, cli):
    m = charrnn_cli.load(run)
    a = m.generate("the ", n=3, length=50, temperature=0.8, seed=1)
    assert a == m.generate("the ", n=3, length=50, temperature=0.8, seed=1)
    assert len(a) == 3 and all(len(t) == 50 for t in a) and len(set(a)) == 3
    args = ["--num", "3", "--len", "50", "--temperature", "0.8", "--random-seed", "1"]
    res = cli("sample", "--run", run, "--seed", "the ", *args, "--no-echo-seed", "--separator", "|")
    assert res.out.split("|") == a
    greedy = cli(
        "sample", "--run", run, "--seed", "the ", "--greedy", "--len", "80", "--no-echo-seed"
    )
    assert m.generate("the ", length=80, temperature=0) == [greedy.out]
    assert "".join(m.stream("the ", length=80, temperature=0)) == greedy.out
    assert all(line.startswith("the") for line in m.lines(3, prompt="the", seed=2))


def test_score_is_eval_corpus(run, cli, tiny_corpus):
    import json

    want = json.loads(cli("eval", "--run", run, "--corpus", str(tiny_corpus), "--json").out)
    got = charrnn_cli.load(run).score(tiny_corpus.read_text(encoding="utf-8"))
    assert got == {k: want[k] for k in got} and got["chars"] > 1000


def test_export_then_load_the_folder(run, tmp_path):
    m = charrnn_cli.load(run)
    out = m.export(tmp_path / "f")
    again = charrnn_cli.load(str(out))
    assert again.generate("the ", length=40, seed=4) == m.generate("the ", length=40, seed=4)
    assert again.config["hidden_size"] == 16 and again.vocab == m.vocab
    with pytest.raises(UsageError, match="exists"):
        m.export(out)


def test_mistakes_raise_the_cli_s_errors(run):
    with pytest.raises(CharrnnError, match="no run named"):
        charrnn_cli.load("nope")
    m = charrnn_cli.load(run)
    with pytest.raises(UsageError, match="temperature"):
        m.generate(temperature=-1)
    with pytest.raises(UsageError, match="never saw"):
        m.generate("QQQ")
