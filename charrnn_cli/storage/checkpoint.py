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

import io
import math
import pickle
import random
import warnings
from pathlib import Path
from typing import Any

import torch

from charrnn_cli.config import ModelConfig, TrainConfig, from_dict, to_dict
from charrnn_cli.errors import CharrnnError, CorruptFileError
from charrnn_cli.model import CharRNN
from charrnn_cli.storage import paths, readback

FORMAT = 1


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write `payload` (plain containers of tensors, numbers and strings) atomically."""
    with paths.atomic_writer(path) as fh:
        torch.save({"format": FORMAT, **payload}, fh)


def load(path: Path, raw: bytes | None = None) -> dict[str, Any]:
    """Read a checkpoint safely (from `raw`, its bytes read already, when given); any damage
    becomes a CorruptFileError naming the file."""
    if raw is None and not path.is_file():
        raise CharrnnError(f"no checkpoint at {path}")
    try:
        with warnings.catch_warnings():  # torch warns about odd pickles: the error says it all
            warnings.simplefilter("ignore")
            source = path if raw is None else io.BytesIO(raw)
            data = torch.load(source, map_location="cpu", weights_only=True)
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
    version = data.get("format", 0)
    if readback.is_int(version) and version > FORMAT:
        raise CorruptFileError(
            f"checkpoint {path} has format {version}, newer than this charrnn reads "
            f"({FORMAT}): upgrade charrnn"
        )
    problem = _problem(data)
    if problem is not None:
        raise CorruptFileError(f"checkpoint {path} is damaged: {problem}")
    return data


def _problem(data: dict[str, Any]) -> str | None:
    """What is wrong with the fields of a loaded checkpoint (it unpickled as plain data, but any
    field may hold anything): the weights, the config, the vocabulary, the training state."""
    weights = data["model"]
    if not isinstance(weights, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()
    ):
        return "the weights are not named tensors"
    cfg = data["config"]
    why = readback.config_problem(cfg, corpus=False)
    if why is not None:
        return f"config: {why}"
    vocab = data.get("vocab")
    if not isinstance(vocab, str) or len(vocab) != cfg["model"].get("vocab_size", len(vocab)):
        return "the vocabulary is not a string of vocab_size characters"
    if "format" in data and not readback.is_int(data["format"]):
        return "format is not a whole number"
    for key in ("step", "epoch", "cursor", "skipped_steps", "world_size"):
        if key in data and not readback.is_int(data[key]):
            return f"{key} is not a whole number"
    for key in ("elapsed_s", "best_val_loss", "train_loss_smooth"):
        value = data.get(key)
        if value is not None and not (readback.is_number(value) or value == math.inf):
            return f"{key} is not a number"
    return _state_problem(data, cfg["model"])


def _state_problem(data: dict[str, Any], model: dict[str, Any]) -> str | None:
    """The training state an exact resume restores: streams, random states, optimizer."""
    hidden = data.get("hidden") or []
    width = (model.get("layers"), model.get("hidden_size"))
    if not isinstance(hidden, list) or not all(
        isinstance(t, torch.Tensor) and t.ndim == 3 and (t.shape[0], t.shape[2]) == width
        for t in hidden
    ):
        return "the streams' state does not fit the model"
    rngs = data.get("rng") or []
    for state in rngs if isinstance(rngs, list) else [None]:
        if not _rng_fits(state):
            return "a random-number state is damaged"
    if "optimizer" in data and not (
        isinstance(data["optimizer"], dict)
        and isinstance(data["optimizer"].get("state"), dict)
        and isinstance(data["optimizer"].get("param_groups"), list)
    ):
        return "the optimizer state is damaged"
    unigram = data.get("unigram")
    if unigram is not None and not (
        isinstance(unigram, list) and all(map(readback.is_int, unigram)) and sum(unigram) > 0
    ):
        return "the character counts are damaged"
    return None


def _rng_fits(state: Any) -> bool:
    """Whether `state` is one process's random states as `rng_state` makes them."""
    if not isinstance(state, dict):
        return False
    cpu, python, cuda = state.get("torch"), state.get("python"), state.get("cuda", [])
    generators = [cpu, *cuda] if isinstance(cuda, list) else [None]
    if not all(isinstance(t, torch.Tensor) and t.dtype == torch.uint8 for t in generators):
        return False
    if cpu.numel() != torch.get_rng_state().numel():
        return False
    return (
        isinstance(python, list)
        and len(python) == 625
        and all(readback.is_int(v) and v < 2**32 for v in python)
        and python[-1] <= 624  # the position in the Mersenne Twister's state
    )


def build_model(data: dict[str, Any], device: torch.device) -> tuple[CharRNN, str]:
    """The model of a loaded checkpoint on `device`, and its vocabulary."""
    model_cfg, _ = configs(data)
    try:
        model = CharRNN(model_cfg)
        model.load_state_dict(data["model"])
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        why = " ".join(str(exc).split())  # torch's message spans lines: one line, shortened
        why = why if len(why) <= 200 else why[:197] + "..."
        raise CorruptFileError(f"checkpoint weights do not fit its config: {why}") from None
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
    checkpoint and build the model on the device; returns model, vocab, checkpoint, name.
    An exported folder (a path) is read as one, with no store (export/folder.py)."""
    from charrnn_cli import device
    from charrnn_cli.storage import exported, store

    if exported.is_folder(run):
        from charrnn_cli.storage import folder

        return folder.load(str(run), device.pick(device_spec))
    name = store.resolve(run)
    path = store.run_dir(name) / f"{which}.pt"
    if not path.exists():
        other = "last" if which == "best" else "best"
        if (store.run_dir(name) / f"{other}.pt").exists():
            raise CharrnnError(f"run {name!r} has no {which}.pt yet; try --checkpoint {other}")
        raise CharrnnError(f"run {name!r} has no checkpoint yet (was it stopped before saving?)")
    data = load(path)
    try:
        model, vocab = build_model(data, device.pick(device_spec))
    except CorruptFileError as exc:
        raise CorruptFileError(f"{path}: {exc}") from None
    model.eval()
    return model, vocab, data, name
