"""Files of the store damaged or edited by hand, field by field and type by type: config.json,
metrics.jsonl, a corpus's metadata, the encoded cache, checkpoints. A damaged run is listed
with a warning naming the file (and line); the others are listed as before; a command on the
damaged run is one line naming the file. Never an internal error."""

from __future__ import annotations

import json
import shutil
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch

from charrnn_cli import corpora
from charrnn_cli.config import ModelConfig, TrainConfig
from charrnn_cli.data import encode
from charrnn_cli.storage import paths
from tests.helpers import one_line

# a wrong value of each JSON type, for a field of each kind
WRONG = {"str": 7, "int": "7", "float": [1.5], "bool": "yes", "int | None": 2.5}
WRONG["float | None"] = {"a": 1}
DAMAGED_METRICS = (
    b'{"step": "x", "val_loss": "y", "elapsed_s": []}\n\x00\xff\xfe garbage\n[1, 2]\n'
    b'{"step": 5, "epo\n{"step": true}\n{"step": 9, "val_loss": 0.5, "lr": "fast"}\n'
    + b"z" * 70_000
    + b"\n"
)


COMMANDS_ON_THE_RUN = (
    ("runs", "show", "m"),
    ("eval", "--run", "m"),
    ("train", "--run", "m", "--resume"),
)


def no_internal_error(err: str) -> None:
    assert "internal error" not in err and "Traceback" not in err, err


@pytest.fixture
def damaged(run: Path) -> Path:
    """A second run, `d`, a copy of `m` whose metrics.jsonl is then damaged."""
    folder = run.parent / "d"
    shutil.copytree(run, folder)
    (folder / "metrics.jsonl").write_bytes(b'{"step": 1, "train_loss": 3.0}\n')
    with open(folder / "metrics.jsonl", "ab") as fh:
        fh.write(DAMAGED_METRICS)
    return folder


def test_a_damaged_metrics_file_spoils_only_its_own_run(cli, run, damaged):
    r = cli("runs", "--json")
    assert r.code == 0, r.err
    no_internal_error(r.err)
    rows = {row["name"]: row for row in json.loads(r.out)}
    assert set(rows) == {"m", "d"}
    assert rows["d"]["steps"] == 9 and rows["d"]["best_val_loss"] == 0.5  # the good lines
    for word in ('line 2: step is "x"', "line 3: not UTF-8", "line 4: not a JSON object"):
        assert f"metrics.jsonl {word}" in r.err
    assert "4 more damaged lines" in r.err  # named by line up to three, then counted
    assert all("d:" in line for line in r.err.strip().splitlines())  # only d is warned about
    for args in (("runs",), ("runs", "show", "d"), ("runs", "show", "d", "--json")):
        r = cli(*args)
        assert r.code == 0, r.err
        no_internal_error(r.err)
    shown = json.loads(cli("runs", "show", "d", "--json").out)["metrics"]
    assert shown[-1] == {"step": 9, "val_loss": 0.5}  # "lr": "fast" dropped, and said
    r = cli("train", "--run", "d", "--resume", "--max-steps", "8")
    assert r.code == 0, r.err  # the trainer keeps the good lines and drops the rest
    lines = (damaged / "metrics.jsonl").read_text().splitlines()
    assert all(isinstance(json.loads(line)["step"], int) for line in lines)


def _config_cases() -> list[tuple[str, str, object]]:
    """(section, field, a wrong value) for every field of both configs, and the top level."""
    cases = [
        (section, f.name, WRONG[_kind(f)])
        for section, kind in (("model", ModelConfig), ("train", TrainConfig))
        for f in fields(kind)
    ]
    cases += [("", "format", "1"), ("", "corpus", ["x"]), ("", "vocab", 5)]
    return cases + [("", "model", []), ("", "train", "x")]


def _kind(f) -> str:
    from charrnn_cli.storage.readback import _kind

    return _kind(f)


@pytest.mark.parametrize(("section", "key", "value"), _config_cases())
def test_every_config_field_of_a_wrong_type_is_named(cli, run, section, key, value):
    config = json.loads((run / "config.json").read_text())
    (config[section] if section else config)[key] = value
    (run / "config.json").write_text(json.dumps(config))
    where = f"{section}.{key}" if section else key
    r = cli("runs", "--json")  # listed, with what could be read, and a warning
    assert r.code == 0 and [row["name"] for row in json.loads(r.out)] == ["m"], r.err
    assert f"config.json: {where}" in r.err
    for args in (
        ("runs", "show", "m"),
        ("eval", "--run", "m"),
        ("train", "--run", "m", "--resume"),
    ):
        r = cli(*args)
        assert r.code == 4, (args, r.err)
        assert "config.json" in one_line(r.err) and where in r.err, (args, r.err)


@pytest.mark.parametrize(
    "text",
    ["", "null", "[]", '"x"', "{}", "\ufeff{}", "\x00\xff", "{" * 100_000, '{"model": {}}'],
    ids=["empty", "null", "list", "string", "empty-object", "bom", "binary", "deep", "no-train"],
)
def test_a_config_json_that_is_not_a_config_is_one_line(cli, run, text):
    (run / "config.json").write_text(text, encoding="utf-8", errors="surrogateescape")
    r = cli("runs", "--json")
    listed = [row["name"] for row in json.loads(r.out)]
    assert r.code == 0 and listed == (["m"] if text.startswith("{}") or "model" in text else [])
    assert "config.json" in r.err  # an object is listed with what it lacks; the rest warned
    no_internal_error(r.err)
    for args in (
        ("runs", "show", "m"),
        ("eval", "--run", "m"),
        ("train", "--run", "m", "--resume"),
    ):
        r = cli(*args)
        assert r.code == 4 and "config.json" in one_line(r.err), (args, r.err)


CHECKPOINT_DAMAGE = {
    "weights": lambda d: d.update(model=[1, 2]),
    "vocab": lambda d: d.update(vocab=5),
    "vocab-size": lambda d: d.update(vocab=d["vocab"][:-1]),
    "config": lambda d: d["config"]["model"].update(layers="2"),
    "format": lambda d: d.update(format="1"),
    "step": lambda d: d.update(step="7"),
    "elapsed": lambda d: d.update(elapsed_s=[1]),
    "hidden": lambda d: d.update(hidden=[torch.zeros(1, 2, 3)]),
    "rng": lambda d: d.update(rng=[{"torch": torch.zeros(3, dtype=torch.uint8), "python": []}]),
    "optimizer": lambda d: d.update(optimizer=[1]),
    "unigram": lambda d: d.update(unigram=["a"]),
    "cell": lambda d: d["config"]["model"].update(cell="transformer"),
}


@pytest.mark.parametrize("damage", list(CHECKPOINT_DAMAGE))
def test_every_checkpoint_field_damaged_is_one_line_naming_it(cli, run, damage):
    for name in ("best.pt", "last.pt"):
        data = torch.load(run / name, weights_only=True)
        CHECKPOINT_DAMAGE[damage](data)
        torch.save(data, run / name)
    for args in (
        ("sample", "--run", "m", "--len", "5"),
        ("eval", "--run", "m"),
        ("train", "--run", "m", "--resume", "--max-steps", "99"),
    ):
        r = cli(*args)
        assert r.code == 4, (args, r.err)
        assert ".pt" in one_line(r.err) or "checkpoint" in one_line(r.err), (args, r.err)


@pytest.mark.parametrize(
    "meta",
    [
        "not json",
        "[]",
        {"sha256": "x", "size": 5, "source": "s"},
        {"sha256": "a" * 64, "size": "5", "source": "s"},
        {"sha256": "a" * 64, "size": True, "source": "s"},
        {"sha256": "a" * 64, "size": 5, "source": 3},
    ],
    ids=["not-json", "list", "short-sha", "str-size", "bool-size", "int-source"],
)
def test_a_corpus_metadata_file_damaged_is_named(cli, tiny_corpus, meta):
    assert cli("fetch", "--from", str(tiny_corpus), "--name", "mine").code == 0
    text = meta if isinstance(meta, str) else json.dumps(meta)
    corpora.meta_path("mine").write_text(text)
    r = cli("fetch", "--list")
    assert r.code == 0 and "mine\tdamaged" in r.out and "mine.json" in r.err, r.err
    for args in (("fetch", "mine"), ("train", "--corpus", "mine", "--run", "x")):
        r = cli(*args)
        assert r.code == 4 and "mine.json" in one_line(r.err), (args, r.err)


def _damage_encoded(folder: Path, how: str) -> None:
    ids_path = next(folder.glob("*.npy"))
    meta_path = ids_path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    ids = np.load(ids_path)
    if how == "truncated":
        ids_path.write_bytes(ids_path.read_bytes()[:-7])
    elif how == "same-shape-other-ids":
        np.save(ids_path, ids[::-1].copy())
    elif how == "signed":
        np.save(ids_path, ids.astype(np.int16))
    elif how == "huge-header":
        ids_path.write_bytes(ids_path.read_bytes().replace(b"(", b"(99999999999", 1))
    elif how == "vocab-list":
        meta_path.write_text(json.dumps({**meta, "vocab": list(meta["vocab"])}))
    elif how == "unsorted-vocab":
        meta_path.write_text(json.dumps({**meta, "vocab": meta["vocab"][::-1]}))
    elif how == "no-hash":  # written by an older charrnn
        meta_path.write_text(json.dumps({"vocab": meta["vocab"], "length": meta["length"]}))
    elif how == "pickle":
        ids_path.write_bytes(b"\x80\x04K\x01.")


@pytest.mark.parametrize(
    "how",
    ["truncated", "same-shape-other-ids", "signed", "huge-header", "vocab-list",
     "unsorted-vocab", "no-hash", "pickle"],
)  # fmt: skip
def test_a_damaged_encoded_cache_is_encoded_again_never_trained_on(tiny_corpus, how):
    first = encode.load(tiny_corpus)
    first_ids = np.array(first.ids)  # a memory map of the file about to be damaged: copy it
    folder = paths.cache_dir() / "encoded"
    good = {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix != ".lock"}
    _damage_encoded(folder, how)
    again = encode.load(tiny_corpus)
    assert again.vocab == first.vocab and np.array_equal(again.ids, first_ids)
    # and the entry was repaired: the files are the good ones again, read from the cache
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix != ".lock"} == good
    assert encode._cached(first.sha256, "chars") is not None


@pytest.mark.parametrize("target", ["", ".", "/"], ids=["empty", "here", "root"])
def test_a_plot_path_that_is_a_folder_is_a_usage_error(cli, run, target):
    r = cli("runs", "show", "m", "--plot", target)
    assert r.code == 2 and "give it a file name" in one_line(r.err)
