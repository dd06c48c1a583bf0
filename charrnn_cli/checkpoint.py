"""Saving and loading checkpoints: plain dicts of tensors and numbers, written atomically.

A checkpoint holds everything an exact resume needs: the model's and the optimizer's state,
the configs and vocabulary (so sampling needs no flags), the step, epoch and data cursor, the
hidden state of the training streams, and every RNG state. It is written with `torch.save` to
a temp file in the run folder, fsynced and moved into place, so a kill at any moment leaves the
previous good checkpoint. It is read only with `torch.load(weights_only=True)`: a file that
would run code when unpickled is refused, never executed. Always loaded to the CPU first, so a
GPU-trained run samples on a laptop.
"""

from __future__ import annotations

import pickle
import random
import warnings
from pathlib import Path
from typing import Any

import torch

from charrnn_cli import paths
from charrnn_cli.config import ModelConfig, TrainConfig, from_dict, to_dict
from charrnn_cli.errors import CharrnnError, CorruptFileError
from charrnn_cli.model import CharRNN

FORMAT = 1


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write `payload` (plain containers of tensors, numbers and strings) atomically."""
    with paths.atomic_writer(path) as fh:
        torch.save({"format": FORMAT, **payload}, fh)


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint safely; any damage becomes a CorruptFileError naming the file."""
    if not path.is_file():
        raise CharrnnError(f"no checkpoint at {path}")
    try:
        with warnings.catch_warnings():  # torch warns about odd pickles: the error says it all
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, random bytes, a refused pickle global...
        text = str(exc).strip()
        if isinstance(exc, pickle.UnpicklingError) or "weights_only" in text:
            raise CorruptFileError(
                f"checkpoint {path} is refused: it is not plain tensors and numbers (damaged, "
                "or it holds objects that only a full unpickle could build; nothing in it was "
                "run)"
            ) from None
        first = text.splitlines()[0].split(". ")[0] if text else ""
        reason = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
        raise CorruptFileError(
            f"checkpoint {path} is truncated or damaged ({reason[:160]})"
        ) from None
    if not isinstance(data, dict) or "model" not in data or "config" not in data:
        raise CorruptFileError(f"checkpoint {path} is not a charrnn checkpoint")
    if int(data.get("format", 0)) > FORMAT:
        raise CorruptFileError(
            f"checkpoint {path} has format {data.get('format')}, newer than this charrnn reads "
            f"({FORMAT}): upgrade charrnn"
        )
    return data


def build_model(data: dict[str, Any], device: torch.device) -> tuple[CharRNN, str]:
    """The model of a loaded checkpoint on `device`, and its vocabulary."""
    model_cfg, _ = configs(data)
    model = CharRNN(model_cfg)
    try:
        model.load_state_dict(data["model"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise CorruptFileError(f"checkpoint weights do not fit its config: {exc}") from None
    model.to(device)
    model.rnn.flatten_parameters()  # contiguous weights for cuDNN after moving/loading
    return model, data["vocab"]


def configs(data: dict[str, Any]) -> tuple[ModelConfig, TrainConfig]:
    try:
        return from_dict(data["config"])
    except (KeyError, TypeError) as exc:
        raise CorruptFileError(f"checkpoint config is damaged: {exc}") from None


def payload(
    model: torch.nn.Module,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    vocab: str,
    **extra: Any,
) -> dict[str, Any]:
    """The common part of a checkpoint: weights (unwrapped), configs and vocabulary."""
    return {
        "model": model.state_dict(),
        "config": to_dict(model_cfg, train_cfg),
        "vocab": vocab,
        **extra,
    }


def restore(
    data: dict[str, Any],
    path: Path,
    model: CharRNN,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
) -> None:
    """Load a training checkpoint's weights and optimizer (and fp16 scaler) state to resume."""
    try:
        model.load_state_dict(data["model"])
        optimizer.load_state_dict(data["optimizer"])
    except (RuntimeError, KeyError, ValueError) as exc:
        raise CharrnnError(f"{path} does not fit this run's config: {exc}") from None
    model.rnn.flatten_parameters()  # contiguous weights for cuDNN after loading
    if scaler is not None and data.get("scaler"):
        scaler.load_state_dict(data["scaler"])


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(cuda)


def load_run(
    run: str | None, which: str = "best", device_spec: str = "auto"
) -> tuple[CharRNN, str, dict[str, Any], str]:
    """Resolve `run` (name, unique prefix, `latest` or None), load its `best` or `last`
    checkpoint and build the model on the device; returns model, vocab, checkpoint, name."""
    from charrnn_cli import device, store

    name = store.resolve(run)
    path = store.run_dir(name) / f"{which}.pt"
    if not path.exists():
        other = "last" if which == "best" else "best"
        if (store.run_dir(name) / f"{other}.pt").exists():
            raise CharrnnError(f"run {name!r} has no {which}.pt yet; try --checkpoint {other}")
        raise CharrnnError(f"run {name!r} has no checkpoint yet (was it stopped before saving?)")
    data = load(path)
    model, vocab = build_model(data, device.pick(device_spec))
    model.eval()
    return model, vocab, data, name
