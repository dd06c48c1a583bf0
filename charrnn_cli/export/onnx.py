"""`export --format onnx`: one graph that steps any batch and any number of characters.

Inputs `ids` (int64, batch x time), `h` (float32, layers x batch x hidden) and, for an LSTM,
`c`; outputs `logits` (batch x time x vocab), `h_out` and, for an LSTM, `c_out`: feed the
outputs back as the next call's state. The vocabulary, the shape and the start state go into the
model's metadata (`metadata_props`, key `charrnn`, JSON), so a program with onnxruntime needs
nothing else. Written by the TorchScript exporter (`dynamo=False`): with torch 2.13 the dynamo
exporter froze the time axis of an `nn.RNN`, took minutes for an LSTM and exports GRUs with the
wrong `linear_before_reset` (pytorch#189225); this one matches torch to 1e-6 in seconds.
"""

from __future__ import annotations

import io
import json
import warnings
from typing import Any

import torch
from torch import nn

from charrnn_cli import __version__, export
from charrnn_cli.errors import UsageError
from charrnn_cli.export.folder import Source
from charrnn_cli.model import CharRNN

OPSET = 17
METADATA_KEY = "charrnn"


class Stepper(nn.Module):
    """The model with its state as explicit inputs and outputs (h, and c for an LSTM)."""

    def __init__(self, model: CharRNN) -> None:
        super().__init__()
        self.model = model
        self.lstm = model.cfg.cell == "lstm"

    def forward(self, ids: torch.Tensor, h: torch.Tensor, *c: torch.Tensor):
        state = (h, c[0]) if self.lstm else h
        y, out = self.model.rnn(self.model.embed(ids), state)
        logits = self.model.head(y)
        return (logits, *out) if self.lstm else (logits, out)


def metadata(src: Source) -> dict[str, Any]:
    """What a program needs beside the graph: vocabulary, shape, start state (or null)."""
    cfg = src.model.cfg
    start = src.model.start
    return {
        "format": export.FORMAT, "charrnn": __version__, "cell": cfg.cell,
        "layers": cfg.layers, "hidden_size": cfg.hidden_size, "embed_size": cfg.embed_size,
        "vocab": "bytes" if cfg.vocab == "bytes" else list(src.vocab),
        "start": None if start is None else start.detach().float().cpu().tolist(),
        "inputs": ["ids", "h", "c"] if cfg.cell == "lstm" else ["ids", "h"],
        "outputs": ["logits", "h_out", "c_out"] if cfg.cell == "lstm" else ["logits", "h_out"],
    }  # fmt: skip


def onnx_bytes(src: Source) -> bytes:
    """The ONNX model's bytes, the metadata in `metadata_props`."""
    try:
        import onnx
    except ImportError:
        raise UsageError(
            "--format onnx needs the onnx package: pip install 'charrnn[onnx]'"
        ) from None
    model = src.model.cpu().eval()
    cfg = model.cfg
    stepper = Stepper(model).eval()
    lstm = cfg.cell == "lstm"
    batch, time = 2, 3  # any: both axes are dynamic
    ids = torch.zeros(batch, time, dtype=torch.long)
    state = torch.zeros(cfg.layers, batch, cfg.hidden_size)
    args = (ids, state, state.clone()) if lstm else (ids, state)
    inputs = ["ids", "h", "c"][: len(args)]
    outputs = ["logits", "h_out", "c_out"][: len(args)]
    axes = {"ids": {0: "batch", 1: "time"}, "logits": {0: "batch", 1: "time"}}
    axes.update({name: {1: "batch"} for name in (*inputs[1:], *outputs[1:])})
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the RNN-with-batch-size warning says what we do on purpose
        warnings.simplefilter("ignore")
        torch.onnx.export(
            stepper, args, buf, input_names=inputs, output_names=outputs,
            dynamic_axes=axes, opset_version=OPSET, dynamo=False,
        )  # fmt: skip
    proto = onnx.load_from_string(buf.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata(src))
    proto.producer_name, proto.producer_version = "charrnn", __version__
    return proto.SerializeToString()
