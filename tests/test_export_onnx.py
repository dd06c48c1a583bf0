"""`export --format onnx`: onnxruntime runs the graph for every cell at batches and lengths other
than the export's, the state carried from the metadata's start state, and agrees with torch."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from charrnn_cli.config import ModelConfig
from charrnn_cli.errors import UsageError
from charrnn_cli.export.folder import Source
from charrnn_cli.export.writer import write
from charrnn_cli.model import CharRNN
from tests.helpers import need_module

ort = need_module("onnxruntime")
need_module("onnx")


def _source(cell: str, layers: int = 2, start: str = "learned") -> Source:
    torch.manual_seed(1)
    cfg = ModelConfig(cell=cell, vocab_size=7, embed_size=5, hidden_size=12, layers=layers,
                      start_state=start)  # fmt: skip
    model = CharRNN(cfg).eval()
    if model.start is not None:
        with torch.no_grad():
            model.start.normal_()
    return Source(model, "abcdefg", {}, "m", "best", {})


@pytest.mark.parametrize(("cell", "start"), [("lstm", "learned"), ("gru", "learned"),
                                             ("rnn", "zero")])  # fmt: skip
def test_onnxruntime_agrees_with_torch_at_any_batch_and_length(cell, start, tmp_path):
    src = _source(cell, start=start)
    path = write(src, "onnx", tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(path))
    meta = json.loads(sess.get_modelmeta().custom_metadata_map["charrnn"])
    assert meta["vocab"] == list("abcdefg") and meta["cell"] == cell and meta["layers"] == 2
    ids = np.random.default_rng(0).integers(0, 7, size=(5, 11))
    lstm = cell == "lstm"
    if meta["start"] is None:
        h = np.zeros((2, 5, 12), np.float32)
        c = h.copy()
    else:
        s = np.asarray(meta["start"], np.float32)
        h = np.repeat(s[0], 5, axis=1)
        c = np.repeat(s[1], 5, axis=1) if lstm else None
    got = []
    for a, b in ((0, 1), (1, 8), (8, 11)):  # windows of 1, 7 and 3 characters
        feed = {"ids": ids[:, a:b], "h": h, **({"c": c} if lstm else {})}
        out = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feed), strict=True))
        got.append(out["logits"])
        h, c = out["h_out"], out.get("c_out")
    with torch.no_grad():
        want, _ = src.model(torch.from_numpy(ids))
    assert np.abs(np.concatenate(got, axis=1) - want.numpy()).max() < 1e-5


def test_without_the_onnx_package_the_export_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(UsageError, match=r"charrnn\[onnx\]"):
        write(_source("gru", layers=1), "onnx", tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
