"""The exported folder: three files and no pickle, read by the reference safetensors library and
by plain torch; taken as a run by sample, eval and train --init-from in an empty home without
torch.load; and every way its files can fail to fit each other is one line and exit 4."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from charrnn_cli.config import ModelConfig
from charrnn_cli.export import card
from charrnn_cli.export import folder as export_folder
from charrnn_cli.model import CharRNN
from charrnn_cli.storage import folder, safetensors
from tests.helpers import train_tiny


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return train_tiny(tmp_path_factory.mktemp("export"), "r")


@pytest.fixture
def run(trained, charrnn_home) -> str:
    shutil.copytree(trained, charrnn_home / "runs" / "r")
    return "r"


@pytest.fixture
def exported(run, cli, tmp_path) -> Path:
    out = tmp_path / "out"
    res = cli("export", "--run", run, "--output", str(out))
    assert res.code == 0 and res.out.strip() == str(out), res.err
    return out


def _no_torch_load(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("torch.load was called on an exported folder")

    monkeypatch.setattr(torch, "load", refuse)


def test_the_folder_holds_weights_config_and_a_card_and_nothing_pickled(exported):
    from safetensors.torch import load_file

    assert sorted(p.name for p in exported.iterdir()) == [
        "README.md", "config.json", "model.safetensors"]  # fmt: skip
    tensors = load_file(exported / "model.safetensors")  # the reference library reads it
    cfg = json.loads((exported / "config.json").read_text(encoding="utf-8"))
    assert {"embed.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0",
            "rnn.bias_hh_l0", "head.weight", "head.bias", "start"} == set(tensors)  # fmt: skip
    assert tensors["start"].shape == (2, 1, 1, 16) and cfg["cell"] == "lstm"
    assert cfg["vocab"] == sorted(set("".join(cfg["vocab"]))) and cfg["hidden_size"] == 16
    text = (exported / "README.md").read_text(encoding="utf-8")
    head = text.split("---\n")[1]
    assert text.startswith("---\n") and "library_name: charrnn" in head.splitlines()
    assert "pipeline_tag: text-generation" in head and "bits_per_char" in head
    assert cfg["corpus"]["sha256"] in head and "## Use it" in text


def test_tied_weights_leave_the_head_out_and_read_back_tied(tmp_path):
    from charrnn_cli.export.writer import write

    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=6, embed_size=8, hidden_size=8, tie_weights=True)
    model = CharRNN(cfg).eval()
    tensors = export_folder.tensors_of(model)
    assert "head.weight" not in tensors and "embed.weight" in tensors
    src = export_folder.Source(model, "abcde\n", {"unigram": [1] * 6}, "m", "best", {})
    out = write(src, "folder", tmp_path / "tied")
    arrays, _ = safetensors.read(out / "model.safetensors")
    assert "head.weight" not in arrays  # written once
    back, vocab, _, _ = folder.load(str(out))
    assert back.cfg.tie_weights and vocab == "abcde\n"
    assert back.head.weight.data_ptr() == back.embed.weight.data_ptr()  # one matrix again
    x = torch.tensor([[0, 3, 5, 1]])
    with torch.no_grad():
        assert torch.equal(back(x)[0], model(x)[0])


def test_the_plain_torch_code_of_the_card_continues_as_sample_greedy(exported, run, cli):
    code = card.PLAIN_TORCH.replace('"ROMEO:"', '"the "')
    out, cwd = io.StringIO(), os.getcwd()
    try:
        os.chdir(exported)
        with contextlib.redirect_stdout(out):
            exec(compile(code, "card", "exec"), {})
    finally:
        os.chdir(cwd)
    res = cli("sample", "--run", run, "--seed", "the ", "--greedy", "--len", "200")
    assert out.getvalue().rstrip("\n") == res.out and len(res.out) == 204


def test_a_folder_is_a_run_in_an_empty_home_without_torch_load(
    exported, cli, tmp_path, monkeypatch, tiny_corpus
):
    runs, real_load = {}, torch.load
    for who in ("r", str(exported)):
        if who != "r":
            monkeypatch.setenv("CHARRNN_HOME", str(tmp_path / "empty"))
            _no_torch_load(monkeypatch)
        got = cli("sample", "--run", who, "--len", "80", "--random-seed", "5")
        seeded = cli("sample", "--run", who, "--seed", "the", "--len", "80", "--random-seed", "3")
        scored = cli("eval", "--run", who, "--corpus", str(tiny_corpus), "--json")
        assert got.code == seeded.code == scored.code == 0, got.err + seeded.err + scored.err
        runs[who] = (got.out, seeded.out, json.loads(scored.out)["loss"])
    assert runs["r"] == runs[str(exported)]
    res = cli("train", "--init-from", str(exported), "--corpus", str(tiny_corpus), "--run",
              "ft", "--max-steps", "3", "--batch-size", "8", "--quiet")  # fmt: skip
    assert res.code == 0, res.err
    shown = cli("runs", "show", "ft")
    assert f"{exported} (exported folder at step 60" in shown.out
    viz = cli("viz", "surprise", "--run", str(exported), "--text", "the cat sat")
    assert viz.code == 0 and "bits/char" in viz.out, viz.err
    monkeypatch.setattr(torch, "load", real_load)  # the fine-tuned run is a run: a .pt file
    assert cli("export", "--run", "ft", "--output", str(tmp_path / "ft")).code == 0
    card_text = (tmp_path / "ft" / "README.md").read_text(encoding="utf-8")
    assert f"base_model: {json.dumps(exported.name)}" in card_text  # its name, not its path


def test_an_output_that_exists_is_refused_unless_forced(exported, run, cli):
    res = cli("export", "--run", run, "--output", str(exported))
    assert res.code == 2 and "exists" in res.err and "--force" in res.err
    assert len(res.err.strip().splitlines()) == 1
    (exported / "README.md").write_text("old", encoding="utf-8")
    assert cli("export", "--run", run, "--output", str(exported), "--force").code == 0
    assert (exported / "README.md").read_text(encoding="utf-8").startswith("---")
    assert [p.name for p in exported.parent.iterdir() if p.name.startswith(".")] == []


def test_force_never_replaces_a_folder_that_holds_no_export(run, cli, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "precious.txt").write_text("keep", encoding="utf-8")
    for fmt in ("folder", "onnx", "html"):
        res = cli("export", "--run", run, "--format", fmt, "--output", str(mine), "--force")
        assert res.code == 2 and "holds no exported model" in res.err, res.err
    assert (mine / "precious.txt").read_text(encoding="utf-8") == "keep"
    for output in ("", "."):
        res = cli("export", "--run", run, "--output", output, "--force")
        assert res.code == 2 and "names no file or folder" in res.err


def _rewrite(path: Path, change) -> None:
    tensors, meta = safetensors.read(path)
    change(tensors)
    safetensors.write(path, tensors, meta)


def _config(path: Path, **changes) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data), encoding="utf-8")


DAMAGE = {
    "config vs tensors": (lambda f: _config(f / "config.json", hidden_size=24), "model needs"),
    "a missing tensor": (
        lambda f: _rewrite(f / "model.safetensors", lambda t: t.pop("head.bias")), "head.bias"),
    "a wrong shape": (
        lambda f: _rewrite(f / "model.safetensors",
                           lambda t: t.update(start=np.zeros((1, 1, 1, 16), np.float32))),
        "start"),
    "a damaged header": (
        lambda f: (f / "model.safetensors").write_bytes(
            (b := (f / "model.safetensors").read_bytes())[:9] + b"#" + b[10:]), "invalid JSON"),
    "a header past the end": (
        lambda f: (f / "model.safetensors").write_bytes(b"\xff" * 8 + b"{}"), "header too large"),
    "no config": (lambda f: (f / "config.json").unlink(), "no config.json"),
    "a bad cell": (lambda f: _config(f / "config.json", cell="transformer"), "cell"),
}  # fmt: skip


@pytest.mark.parametrize("what", sorted(DAMAGE))
def test_a_folder_whose_files_do_not_fit_is_one_line_and_exit_4(exported, cli, what):
    damage, said = DAMAGE[what]
    damage(exported)
    for args in (("sample", "--len", "5"), ("eval", "--corpus", str(exported / "README.md"))):
        res = cli(*args, "--run", str(exported))
        assert res.code == 4, (what, res.err)
        assert said in res.err and len(res.err.strip().splitlines()) == 1, res.err


def test_a_run_with_no_checkpoint_is_refused_in_one_line(run, cli, charrnn_home, tmp_path):
    for name in ("best.pt", "last.pt"):
        (charrnn_home / "runs" / run / name).unlink()
    res = cli("export", "--run", run, "--output", str(tmp_path / "x"))
    assert res.code == 1 and "no checkpoint" in res.err and not (tmp_path / "x").exists()


def test_safetensors_round_trips_with_the_reference_library(tmp_path):
    from safetensors.numpy import load_file, save_file

    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(4, np.int64)}
    safetensors.write(tmp_path / "ours", arrays, {"k": "v"})
    theirs = load_file(tmp_path / "ours")
    save_file(arrays, tmp_path / "theirs", metadata={"k": "v"})
    back, meta = safetensors.read(tmp_path / "theirs")
    for got in (theirs, back):
        assert set(got) == {"a", "b"} and all(np.array_equal(got[k], arrays[k]) for k in arrays)
    assert meta == {"k": "v"}


@pytest.mark.parametrize(
    ("path", "code", "words"),
    [("../nope", 1, "no exported model folder at ../nope"), ("/etc", 4, "has no config.json")],
)
def test_a_run_path_that_is_no_exported_folder_is_one_line(cli, path, code, words):
    r = cli("sample", "--run", path, "--len", "5")
    assert r.code == code and words in r.err and len(r.err.strip().splitlines()) == 1
    assert r.out == ""
