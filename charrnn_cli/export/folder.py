"""The exported folder written from a run (or from a folder again).

`gather` reads what any export needs from a run (or from a folder again): the model, its
vocabulary, the checkpoint's fields and the run's record. `write_folder` writes
`model.safetensors` (the state dict under the model's own names; `head.weight` left out when it
is tied to `embed.weight`), `config.json` and the model card. Reading a folder back as a run is
storage/folder.py's, so the checkpoint loader takes a folder without importing export/.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from charrnn_cli import __version__, export
from charrnn_cli.errors import CharrnnError
from charrnn_cli.model import CharRNN
from charrnn_cli.storage import paths, safetensors, store


@dataclass
class Source:
    """A model to export and what is known of it."""

    model: CharRNN
    vocab: str  # the characters in id order (vocab.BYTES for a byte run)
    ck: dict[str, Any]  # the checkpoint's fields (or a folder's, in the same shape)
    name: str  # the run's name, or the folder's path
    checkpoint: str  # best | last
    record: dict[str, Any]  # the run's config.json (store.read_config), {} when unreadable

    @property
    def kind(self) -> str:
        return self.model.cfg.vocab


def gather(run: str | None, checkpoint: str = "best") -> Source:
    """Load a run (name, prefix, `latest`, or an exported folder) on the CPU for exporting."""
    from charrnn_cli.storage.checkpoint import load_run

    model, vocab, ck, name = load_run(run, checkpoint, "cpu")
    try:
        record = store.read_config(name)
    except CharrnnError:
        record = {}
    return Source(model, vocab, ck, name, ck.get("checkpoint", checkpoint), record)


def tensors_of(model: CharRNN) -> dict[str, np.ndarray]:
    """The state dict as float32 arrays under its own names; a tied head.weight left out."""
    state = model.state_dict()
    if model.cfg.tie_weights:
        state.pop("head.weight")
    return {k: v.detach().float().cpu().numpy() for k, v in state.items()}


def config_of(src: Source) -> dict[str, Any]:
    """The folder's config.json: the model's shape, vocabulary and start state, then where it
    came from (run, step, corpus, held-out figures, parent, training options)."""
    cfg = src.model.cfg
    out: dict[str, Any] = {"format": export.FORMAT, "charrnn": __version__}
    out.update({k: getattr(cfg, k) for k in export.SHAPE})
    out["vocab"] = "bytes" if cfg.vocab == "bytes" else list(src.vocab)
    out["unigram"] = src.ck.get("unigram")
    out.update(run=_public_run(src.name), checkpoint=src.checkpoint, step=src.ck.get("step"))
    out["held_out"] = held_out(src)
    corpus = public_corpus(src.record.get("corpus"))
    if corpus:
        out["corpus"] = corpus
    parent = src.record.get("parent")
    if isinstance(parent, dict) and parent:
        out["parent"] = {**parent, "run": _public_run(str(parent.get("run")))}
        out["parent"]["corpus"] = public_corpus(parent.get("corpus"))
    if src.record.get("preset"):
        out["preset"] = src.record["preset"]
    out["training"] = src.ck.get("config", {}).get("train", {})
    return out


def public_corpus(record: object) -> dict[str, Any] | None:
    """A corpus record as it may leave the machine: its name and sha256, and its source when
    that is a URL or a built-in text; never the path it was read from (`path`, `file:...`,
    `stdin`). None when it records no sha256."""
    if not isinstance(record, dict) or not record.get("sha256"):
        return None
    out = {"name": record.get("name"), "sha256": record["sha256"]}
    source = str(record.get("source") or "")
    if source and not source.startswith(("file:", "stdin")):
        out["source"] = source
    return out


def _public_run(name: str) -> str:
    """A run's name as it may leave the machine: an exported folder's path its last part."""
    return Path(name).name if "/" in name or os.sep in name else name


def held_out(src: Source) -> dict[str, float] | None:
    """The checkpoint's held-out loss (nats/char) and bits/char, when they are known."""
    if isinstance(src.ck.get("held_out"), dict):  # a folder exported again
        return src.ck["held_out"]
    loss = src.ck.get("best_val_loss") if src.checkpoint == "best" else None
    if loss is None and not export.is_folder(src.name):
        rows = [r for r in _metrics(src.name) if r.get("val_loss") is not None]
        rows = [r for r in rows if r.get("step", 0) <= (src.ck.get("step") or 0)]
        loss = rows[-1]["val_loss"] if rows else None
    if not isinstance(loss, (int, float)) or not math.isfinite(loss):
        return None
    return {"loss": round(float(loss), 6), "bits_per_char": round(float(loss) / store.LN2, 6)}


def _metrics(name: str) -> list[dict[str, Any]]:
    try:
        return store.read_metrics(name)
    except CharrnnError:
        return []


def write_folder(src: Source, folder: Path, card: str) -> None:
    """The three files into `folder` (made by the caller), each written atomically."""
    safetensors.write(folder / export.TENSORS, tensors_of(src.model), {"format": "pt"})
    paths.atomic_write_text(folder / export.CONFIG, json.dumps(config_of(src), indent=1) + "\n")
    paths.atomic_write_text(folder / export.CARD, card)
