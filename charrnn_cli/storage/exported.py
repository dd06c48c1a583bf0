"""An exported folder told from a run name, and its config.json read and checked (torch-free).

An exported folder (export/) is `model.safetensors`, `config.json` and a model card. Wherever a
run is taken (sample, eval, viz, serve, `train --init-from`, the store's `read_config`) a folder
is taken too: this module tells the two apart and reads the folder's config.json field by field
without importing torch; its weights are read by storage/folder.py. Both sit under the checkpoint
loader and the exporters, so neither has to import the other.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from charrnn_cli.config import CELLS, ModelConfig
from charrnn_cli.errors import CharrnnError, CorruptFileError, UsageError
from charrnn_cli.storage import paths, readback

FORMAT = 1  # the folder's format: config.json's `format`
CONFIG = "config.json"
TENSORS = "model.safetensors"
CARD = "README.md"
FORMATS = ("folder", "onnx", "html")
CONFIG_MAX_BYTES = 64 << 20
# config.json's model fields: ModelConfig's, but vocab (the characters, or "bytes") and
# vocab_size (their count) are read from `vocab`
SHAPE = ("cell", "layers", "hidden_size", "embed_size", "tie_weights", "start_state", "dropout")


def is_folder(spec: str | None) -> bool:
    """Whether a --run/--init-from value names an exported folder rather than a run: it holds a
    `/` (a path: `./lstm1`), or it is a folder with an export in it and no run has the name. A
    bare name a run has is the run, whatever the working directory holds; one that names such a
    folder and could also mean a run (a prefix of a run's name, `latest`) is refused as
    ambiguous (a UsageError), never guessed."""
    if not spec:
        return False
    if "/" in spec or (os.sep != "/" and os.sep in spec):
        return True
    try:  # a name too long for a file name raises rather than answering no
        if not holds_export(Path(spec)):
            return False
        runs = _run_names() if paths.is_name(spec) else []  # no run has another name
    except (OSError, ValueError):
        return False
    if spec in runs:
        return False
    meant = sorted(n for n in runs if n.startswith(spec)) or (runs if spec == "latest" else [])
    if meant:
        raise UsageError(
            f"{spec} names both the exported folder ./{spec} and the run {meant[0]}: write "
            f"./{spec} for the folder, or the run's whole name"
        )
    return True


def _run_names() -> list[str]:
    """The names of the runs in the store (the folders with a config.json), read with no store
    import: store.py reads exported folders through this module."""
    root = paths.data_dir()
    if not root.is_dir():
        return []
    return [p.name for p in root.iterdir() if paths.is_name(p.name) and (p / CONFIG).is_file()]


def holds_export(folder: Path) -> bool:
    """Whether `folder` holds an exported model's config.json and model.safetensors."""
    return (folder / CONFIG).is_file() and (folder / TENSORS).is_file()


def read_config(folder: Path) -> dict[str, Any]:
    """An exported folder's config.json, every field the model needs checked: a
    CorruptFileError naming the file and the field when it cannot be used."""
    path = folder / CONFIG
    try:
        there = folder.is_dir()
    except (OSError, ValueError) as exc:
        raise UsageError(f"--run {folder}: {getattr(exc, 'strerror', None) or exc}") from None
    if not there:
        raise CharrnnError(f"no exported model folder at {folder} (a --run with '/' is a path)")
    if not path.is_file():
        raise CorruptFileError(f"{folder} is not an exported model folder: it has no {CONFIG}")
    data = readback.load_json(path, CONFIG_MAX_BYTES)
    why = _problem(data)
    if why is not None:
        raise CorruptFileError(f"{path}: {why}")
    return data


def _problem(data: dict[str, Any]) -> str | None:
    try:  # JSON's \ud800 escapes make strings no text can hold: UTF-8 refuses them
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):
        return "it holds a lone surrogate (a \\ud800-\\udfff escape), which no text can hold"
    version = data.get("format", FORMAT)
    if not readback.is_int(version):
        return "format is not a whole number"
    if version > FORMAT:
        return f"format {version} is newer than this charrnn reads ({FORMAT}): upgrade charrnn"
    missing = [k for k in (*SHAPE[:5], "vocab") if k not in data]
    if missing:
        return f"it lacks {', '.join(missing)}"
    why = readback.section_problem(model_section(data), ModelConfig, "config")
    if why is not None:
        return why
    if data["cell"] not in CELLS:
        return f"cell is {data['cell']!r}, not one of {', '.join(CELLS)}"
    vocab = data["vocab"]
    if vocab != "bytes" and not (
        isinstance(vocab, list) and vocab and all(isinstance(c, str) and len(c) == 1 for c in vocab)
    ):
        return 'vocab is neither a list of single characters nor "bytes"'
    if isinstance(vocab, list) and len(set(vocab)) != len(vocab):
        return "vocab holds a character twice"
    sizes = [data[k] for k in ("layers", "hidden_size", "embed_size")]
    if not all(readback.is_int(v) and v >= 1 for v in sizes):
        return "layers, hidden_size and embed_size must be whole numbers of at least 1"
    return _counts_problem(data) or _record_problem(data)


def _counts_problem(data: dict[str, Any]) -> str | None:
    """`unigram`: the training text's count of each character (null: unknown)."""
    counts = data.get("unigram")
    if counts is None:
        return None
    if not (isinstance(counts, list) and all(map(readback.is_int, counts))):
        return "unigram is not a list of counts"
    if len(counts) != model_section(data)["vocab_size"]:
        return "unigram does not count the vocab"
    if sum(counts) == 0:
        return "unigram counts no character (its probabilities would be 0/0)"
    return None


def _record_problem(data: dict[str, Any]) -> str | None:
    """Where the model came from, each field of the kind charrnn writes (or null): the
    training section, the run, step and held-out figures, the corpus and the parent."""
    training = data.get("training")
    if training is not None:
        why = readback.config_problem({"model": model_section(data), "train": training})
        if why is not None:
            return why.replace("train", "training", 1) if why.startswith("train") else why
    for key in ("run", "checkpoint", "preset", "charrnn"):
        if data.get(key) is not None and not isinstance(data[key], str):
            return f"{key} is {readback.shown(data[key])}, not a string"
    if data.get("step") is not None and not readback.is_int(data["step"]):
        return f"step is {readback.shown(data['step'])}, not a whole number"
    held = data.get("held_out")
    if held is not None and not (
        isinstance(held, dict)
        and all(readback.is_number(held.get(k)) for k in ("loss", "bits_per_char"))
    ):
        return "held_out is not a loss and bits_per_char, both numbers"
    corpus = data.get("corpus")
    if corpus is not None and not (
        isinstance(corpus, dict) and all(isinstance(v, str | None) for v in corpus.values())
    ):
        return "corpus is not a JSON object of strings"
    return readback.parent_problem(data.get("parent"))


def vocab_text(data: dict[str, Any]) -> str:
    """The vocabulary as charrnn holds it: the characters in id order (256 bytes for a byte run,
    see vocab.BYTES)."""
    from charrnn_cli.vocab import BYTES

    return BYTES if data["vocab"] == "bytes" else "".join(data["vocab"])


def model_section(data: dict[str, Any]) -> dict[str, Any]:
    """config.json's fields as a run's `model` section (ModelConfig's names)."""
    section = {k: data[k] for k in SHAPE if k in data}
    section.setdefault("start_state", "zero")
    kind = "bytes" if data.get("vocab") == "bytes" else "chars"
    size = 256 if kind == "bytes" else len(v) if isinstance(v := data.get("vocab"), list) else 0
    return {**section, "vocab": kind, "vocab_size": size}


def run_config(folder: Path) -> dict[str, Any]:
    """The folder's config.json in the shape of a run's config.json (store.read_config): model
    and train sections, vocabulary, corpus and parent, so eval and viz find the text it was
    trained on the way they find a run's."""
    data = read_config(folder)
    train = data.get("training") if isinstance(data.get("training"), dict) else {}
    out = {"model": model_section(data), "train": train, "vocab": vocab_text(data)}
    for key in ("corpus", "parent", "preset"):
        if isinstance(data.get(key), dict if key != "preset" else str):
            out[key] = data[key]
    return out
