"""Reliability round four: a model folder someone hands you, and the runs beside it.

A crafted model.safetensors header (fault 10) or config.json (fault 11) is exit 4 and one line
naming the file, in every command that reads a folder; a folder in the working directory named
like a run never shadows the run (12); an exported fine-tune names no local path (13); a run
trained in bf16 or fp16 goes on where that precision is absent (16); length 0 is "" (18).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from charrnn_cli import device
from charrnn_cli.export.writer import export_run
from tests.helpers import TINY, one_error_line, one_line, runs_left, train_tiny
from tests.warm import warm_spawn

TENSORS, CONFIG = "model.safetensors", "config.json"


@pytest.fixture(scope="module")
def handed(tmp_path_factory) -> Path:
    """A folder exported from a tiny run trained elsewhere (another home): what a user is
    handed."""
    root = tmp_path_factory.mktemp("handed")
    train_tiny(root, "elsewhere")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHARRNN_HOME", str(root / "home"))
        return export_run("elsewhere", "best", "folder", root / "model")


@pytest.fixture
def model(handed, tmp_path) -> Path:
    return Path(shutil.copytree(handed, tmp_path / "model"))


def craft(folder: Path, header: bytes, data: bytes = b"\0" * 8) -> None:
    """A model.safetensors of `header` (its 8-byte little-endian length first) and `data`."""
    (folder / TENSORS).write_bytes(len(header).to_bytes(8, "little") + header + data)


def _entry(shape: str, offsets: str = "[0, 4]", dtype: str = '"F32"') -> bytes:
    return f'{{"x": {{"dtype": {dtype}, "shape": {shape}, "data_offsets": {offsets}}}}}'.encode()


# the headers (each with 8 bytes of data), and two the library itself accepts: 100
# dimensions over exactly 4 bytes, and 2**40 rows of nothing
CRAFTED = {
    "nested 200,000 deep": (b'{"x":' + b"[" * 200_000 + b"]" * 200_000 + b"}", b"\0" * 8),
    "a dtype that is a list": (_entry("[1]", dtype='["F32"]'), b"\0" * 8),
    "a shape whose product wraps": (_entry("[4294967296, 4294967296]", "[0, 0]"), b"\0" * 8),
    "a 5,000-digit number": (_entry("[" + "9" * 5000 + "]"), b"\0" * 8),
    "2**70": (_entry(f"[{2**70}]"), b"\0" * 8),
    "100 dimensions": (_entry(str([1] * 100)), b"\0" * 8),
    "100 dimensions the library accepts": (_entry(str([1] * 100)), b"\0" * 4),
    "2**40 rows of nothing": (_entry(f"[{2**40}, 0]", "[0, 0]"), b""),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_a_crafted_header_is_one_line_naming_the_file(model, cli, case):
    craft(model, *CRAFTED[case])
    r = cli("sample", "--run", str(model), "--len", "5")
    assert r.code == 4 and str(model / TENSORS) in one_line(r.err), (case, r.err)
    assert r.out == ""


def test_every_command_that_reads_a_folder_refuses_a_crafted_header(
    model, cli, tiny_corpus, tmp_path, charrnn_home
):
    craft(model, *CRAFTED["100 dimensions the library accepts"])
    for args in (
        ["sample", "--len", "5"], ["eval", "--corpus", str(tiny_corpus)],
        ["export", "--output", str(tmp_path / "out")], ["viz", "surprise", "--text", "the cat"],
    ):  # fmt: skip
        r = cli(*args, "--run", str(model))
        assert r.code == 4 and TENSORS in one_line(r.err), (args, r.err)
    r = cli("train", "--init-from", str(model), "--corpus", str(tiny_corpus), "--run", "ft")
    assert r.code == 4 and TENSORS in one_error_line(r.err), r.err  # after the lineage line
    assert not (tmp_path / "out").exists() and runs_left(charrnn_home) == []


def _edit_config(folder: Path, change) -> None:
    data = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    change(data)
    (folder / CONFIG).write_text(json.dumps(data), encoding="utf-8")  # "\ud800" as an escape


CONFIGS = {
    "training is a string": lambda c: c.update(training="abc"),
    "held_out.loss is a string": lambda c: c.update(held_out={"loss": "x"}),
    "corpus.name is a number": lambda c: c.update(corpus={"name": 5}),
    "unigram counts nothing": lambda c: c.update(unigram=[0] * len(c["unigram"])),
    "a lone surrogate in the vocabulary": lambda c: c["vocab"].__setitem__(5, "\ud800"),
    "parent.corpus is a list": lambda c: c.update(parent={"run": "p", "corpus": []}),
    "step is a float": lambda c: c.update(step=1.5),
}


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_a_crafted_config_is_one_line_naming_the_file(model, cli, tiny_corpus, tmp_path, case):
    _edit_config(model, CONFIGS[case])
    for args in (
        ["sample", "--len", "5"], ["eval", "--corpus", str(tiny_corpus), "--max-chars", "500"],
        ["export", "--output", str(tmp_path / "out")],
    ):  # fmt: skip
        r = cli(*args, "--run", str(model))
        assert r.code == 4 and str(model / CONFIG) in one_line(r.err), (case, args, r.err)


@pytest.mark.slow
def test_the_cli_refuses_crafted_folders_in_one_line_in_a_process_of_its_own(handed, tmp_path):
    # through the real entry point, in a process (forked warm) that a crash would end: serve (no
    # model to serve: exit 4 before it binds), sample
    for name, args, edit in (
        ("zeros", ["serve", "--port", "0"],
         lambda f: _edit_config(f, CONFIGS["unigram counts nothing"])),
        ("nested", ["sample", "--len", "5"], lambda f: craft(f, *CRAFTED["nested 200,000 deep"])),
        ("text", ["export", "--output", str(tmp_path / "o")],
         lambda f: _edit_config(f, CONFIGS["training is a string"])),
    ):  # fmt: skip
        folder = Path(shutil.copytree(handed, tmp_path / name))
        edit(folder)
        proc = warm_spawn(*args, "--run", str(folder))
        try:
            out, err = proc.communicate(timeout=120)
        finally:
            proc.kill()  # a server that took the folder would serve on
        assert proc.returncode == 4 and str(folder) in one_line(err), (name, err)


def test_a_folder_named_like_a_run_never_shadows_it(
    cli, trained_run, handed, tmp_path, monkeypatch, charrnn_home
):
    import charrnn_cli

    run = trained_run("r", *TINY, "--max-steps", "6", "--hidden-size", "12")
    greedy = ["--seed", "the ", "--len", "40", "--greedy"]
    viz = ["viz", "surprise", "--text", "the cat sat"]
    want, viz_want = cli("sample", "--run", run, *greedy).out, cli(*viz, "--run", run).out
    api_want = charrnn_cli.load(run).config
    monkeypatch.chdir(tmp_path)
    shutil.copytree(handed, tmp_path / "r")  # `export --output r` of another model, here
    assert cli("sample", "--run", "r", *greedy).out == want
    folder_text = cli("sample", "--run", str(tmp_path / "r"), *greedy).out
    assert cli("sample", "--run", "./r", *greedy).out == folder_text
    shown = json.loads(cli("runs", "show", "r", "--json").out)["config"]
    stored = json.loads((charrnn_home / "runs" / "r" / "config.json").read_text())
    assert shown["model"] == stored["model"] and shown["corpus"] == stored["corpus"]
    assert cli("export", "--run", "r", "--output", "out").code == 0
    assert json.loads(Path("out/config.json").read_text())["run"] == "r"
    assert cli(*viz, "--run", "r").out == viz_want
    assert charrnn_cli.load("r").config == api_want and charrnn_cli.load("./r").config != api_want
    r = cli("train", "--run", "r", "--resume", "--max-steps", "8", "--quiet")
    assert r.code == 0, r.err
    # a bare name that is a folder here and could mean a run (`latest`, a prefix): refused
    shutil.copytree(handed, tmp_path / "latest")
    r = cli("sample", "--run", "latest", "--len", "5")
    assert r.code == 2 and "./latest" in one_line(r.err)


def test_an_exported_fine_tune_names_no_local_path(
    cli, trained_run, handed, tiny_corpus, tmp_path, tmp_path_factory
):
    trained_run("r", *TINY, "--max-steps", "6")  # trained on a file: source "file:/..."
    local = str(tmp_path_factory.getbasetemp())
    for parent, name in (("r", "r"), (str(handed), handed.name)):
        out = tmp_path / f"ft-{name}"
        r = cli("train", "--init-from", parent, "--corpus", str(tiny_corpus), "--run",
                f"ft-{name}", "--max-steps", "3", "--batch-size", "8", "--quiet")  # fmt: skip
        assert r.code == 0, r.err
        assert cli("export", "--run", f"ft-{name}", "--output", str(out)).code == 0
        for file in (CONFIG, "README.md"):
            text = (out / file).read_text(encoding="utf-8")
            assert local not in text and "file:" not in text, (parent, file)
        cfg = json.loads((out / CONFIG).read_text(encoding="utf-8"))
        assert cfg["parent"]["run"] == name and "path" not in cfg["parent"]["corpus"]
        assert f"base_model: {json.dumps(name)}" in (out / "README.md").read_text()


@pytest.mark.parametrize("stored", ["bf16", "fp16"])
def test_a_run_trained_in_bf16_or_fp16_goes_on_where_that_is_absent(
    cli, tiny_corpus, charrnn_home, monkeypatch, stored
):
    args = ["--corpus", str(tiny_corpus), "--run", "b", *TINY, "--precision", "fp32"]
    assert cli("train", *args, "--max-steps", "4", "--quiet").code == 0
    path = charrnn_home / "runs" / "b" / "config.json"
    data = json.loads(path.read_text())
    data["train"]["precision"] = stored  # as a GPU (fp16, the gpu preset's bf16) stored it
    path.write_text(json.dumps(data))
    monkeypatch.setattr(device, "native_bf16", lambda: False)  # a CPU without bf16
    for quiet in (["--quiet"], []):
        r = cli("train", "--run", "b", "--resume", "--max-steps", "6" if quiet else "8", *quiet)
        assert r.code == 0, r.err
        assert f"the run trained in {stored}" in r.err and "fp32" in r.err
        data = json.loads(path.read_text())
        assert data["precision_used"] == "fp32" and data["train"]["precision"] == stored
    r = cli("train", "--run", "b", "--resume", "--max-steps", "10", "--precision", "fp32")
    assert r.code == 0 and json.loads(path.read_text())["train"]["precision"] == "fp32", r.err
    r = cli("train", "--run", "b", "--resume", "--max-steps", "12", "--precision", "bf16")
    assert r.code == 2 and "no bf16 arithmetic" in one_line(r.err)  # asked for: refused


def test_length_0_is_empty_text_for_every_sample(trained_run):
    import charrnn_cli

    m = charrnn_cli.load(trained_run("r", *TINY, "--max-steps", "6"))
    assert m.generate("", n=2, length=0, seed=1) == ["", ""]
    assert m.generate("", length=0) == [""] and m.generate("the", n=3, length=0) == [""] * 3
    assert list(m.stream("", length=0)) == []
    assert [len(t) for t in m.generate("", n=2, length=1, seed=1)] == [1, 1]
