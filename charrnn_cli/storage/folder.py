"""An exported folder read back as a run, with no run store: the tuple `checkpoint.load_run`
returns, so sample, eval, viz and `train --init-from` take a folder like a run.

The tensors are checked against config.json name by name and shape by shape before a byte of
data is read, and nothing is unpickled (safetensors.py reads the file with the reference
library); config.json itself is exported.py's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from charrnn_cli.config import ModelConfig, from_dict
from charrnn_cli.errors import CorruptFileError
from charrnn_cli.model import CharRNN, shapes
from charrnn_cli.storage import exported, paths, safetensors

FLOATS = ("F32", "F16", "F64")  # the dtypes a folder's weights may have (charrnn writes F32)


def load(spec: str, device: torch.device | None = None) -> tuple[CharRNN, str, dict[str, Any], str]:
    """An exported folder as `checkpoint.load_run` returns a run: (model, vocab, checkpoint
    fields, name); a CorruptFileError when its files do not fit each other."""
    folder = paths.user_path(spec)
    ck = checkpoint_of(folder)
    model = CharRNN(from_dict(ck["config"])[0])
    model.load_state_dict(ck["model"])
    model.to(device or torch.device("cpu")).eval()
    model.rnn.flatten_parameters()
    return model, ck["vocab"], ck, spec


def checkpoint_of(folder: Path) -> dict[str, Any]:
    """The folder as a checkpoint's fields: weights (torch tensors, checked against
    config.json), config sections, vocabulary, character counts and step."""
    data = exported.read_config(folder)
    cfg_dict = {"model": exported.model_section(data), "train": data.get("training") or {}}
    weights = read_weights(folder, from_dict(cfg_dict)[0])
    return {
        "model": weights, "config": cfg_dict, "vocab": exported.vocab_text(data),
        "unigram": data.get("unigram"), "step": data.get("step") or 0,
        "checkpoint": data.get("checkpoint"),
        "held_out": data.get("held_out"),
    }  # fmt: skip


def read_weights(folder: Path, model_cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """The folder's model.safetensors as the state dict of the model config.json describes:
    each tensor's name, dtype and shape checked before its bytes are read, then its values."""
    want = shapes(model_cfg)
    where = f"{folder / exported.TENSORS} does not fit {folder / exported.CONFIG}"
    optional = {"head.weight"} if model_cfg.tie_weights else set()  # a tied head is left out
    arrays, _ = safetensors.read(
        folder / exported.TENSORS, lambda got: _check(got, want, optional, where)
    )
    return _fitted(arrays, model_cfg, want, where)


def _check(
    got: safetensors.Layout, want: dict[str, tuple[int, ...]], optional: set[str], where: str
) -> None:
    """The file's tensors against the model's, before any is read: a missing, extra,
    misshapen or non-float tensor is one line naming it."""
    missing = [k for k in want if k not in got and k not in optional]
    if missing:
        raise CorruptFileError(f"{where}: it has no tensor {missing[0]!r}")
    extra = [k for k in got if k not in want]
    if extra:
        raise CorruptFileError(f"{where}: tensor {extra[0][:80]!r} is not part of this model")
    for key, (dtype, shape) in got.items():
        if shape != want[key]:
            shown = str(shape) if len(str(shape)) <= 60 else f"{len(shape)}-dimensional"
            raise CorruptFileError(
                f"{where}: {key} is {shown}, the config's model needs {want[key]}"
            )
        if dtype not in FLOATS:
            raise CorruptFileError(f"{where}: {key} is {dtype[:20]}, not F32, F16 or F64")


def _fitted(
    arrays: dict[str, np.ndarray],
    model_cfg: ModelConfig,
    want: dict[str, tuple[int, ...]],
    where: str,
) -> dict[str, torch.Tensor]:
    """The checked tensors as the model's state dict: finite float32 (a tied head.weight is
    embed.weight)."""
    if "head.weight" not in arrays:  # tied (_check let it be left out)
        arrays = {**arrays, "head.weight": arrays["embed.weight"]}
    out = {}
    for key in want:
        array = arrays[key]
        if not np.isfinite(array).all():
            raise CorruptFileError(f"{where}: {key} is not finite floating-point numbers")
        out[key] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if model_cfg.tie_weights and not torch.equal(out["head.weight"], out["embed.weight"]):
        raise CorruptFileError(f"{where}: tie_weights, but head.weight is not embed.weight")
    return out
