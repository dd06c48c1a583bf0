"""Starting a fine-tuned run from its parent's weights, with the vocabulary extended.

The new characters are appended after the parent's (lineage.merge_vocab), and their embedding
rows, output rows and output biases start as the mean of the parent's rows: the new logits are
then the mean of the old ones, so the parent's predictions over its own characters are unchanged
up to the renormalisation the new ones cause, and each new character gets at most the average
probability (J. Hewitt, "Initializing new word embeddings for pretrained language models";
zero rows would get logit 0, which dominates once the trained logits are large and negative).
Every other parameter is copied as it is. The parent's checkpoint is only read, never written.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from charrnn_cli.errors import CharrnnError, CorruptFileError
from charrnn_cli.model import CharRNN
from charrnn_cli.storage import checkpoint, store
from charrnn_cli.training.distributed import Comm
from charrnn_cli.training.job import Job
from charrnn_cli.training.lineage import FOLDER, SHAPE_KEYS

# The parameters with one row per character (with --tie-weights the first two are one matrix,
# and both keys of the state dict get the same rows)
VOCAB_ROWS = ("embed.weight", "head.weight", "head.bias")


def extend(state: dict[str, torch.Tensor], new_rows: int) -> dict[str, torch.Tensor]:
    """`state` with `new_rows` rows appended to each vocabulary parameter, each the mean of
    that parameter's rows; every other entry as it is."""
    out = dict(state)
    for key in VOCAB_ROWS:
        rows = state[key]  # (V, E), (V, H) or (V,)
        mean = rows.float().mean(0, keepdim=True).to(rows.dtype)  # (1, ...)
        out[key] = torch.cat([rows, mean.expand(new_rows, *rows.shape[1:])])  # (V + new, ...)
    return out


def init_from(model: CharRNN, job: Job, comm: Comm) -> None:
    """Load the parent's checkpoint into `model` (built for the job's extended vocabulary) and
    fill in the record's step and sha256. The file is read once, through one descriptor, so
    the bytes hashed are the bytes loaded even while the parent's trainer replaces it; every
    rank reads it, and they must have read the same bytes, or all of them stop. A parent
    removed meanwhile (`runs rm`) is one line, not an internal error."""
    parent = job.parent
    assert parent is not None
    if parent.checkpoint == FOLDER:  # an exported folder: safetensors, never unpickled
        from charrnn_cli.storage import folder
        from charrnn_cli.storage.exported import TENSORS

        path = Path(parent.run) / TENSORS
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        ck = folder.checkpoint_of(Path(parent.run))
    else:
        path, digest, ck = _read_checkpoint(parent.run, parent.checkpoint)
    first = comm.broadcast_object(digest)
    if comm.any(digest != first)[0]:
        raise CharrnnError(
            f"{path} changed while it was read (is run {parent.run!r} still training?): "
            "try again, or fine-tune from a run that is not training"
        )
    old_vocab = job.data.vocab[: len(job.data.vocab) - len(parent.added)]
    _check_fits(ck, path, job, old_vocab)
    state = extend(ck["model"], len(parent.added))
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError) as exc:
        raise CorruptFileError(f"{path} does not fit the fine-tuned model: {exc}") from None
    model.rnn.flatten_parameters()  # contiguous weights for cuDNN after loading
    parent.step, parent.sha256 = int(ck.get("step", 0)), digest


def _check_fits(ck: dict[str, Any], path: Path, job: Job, old_vocab: str) -> None:
    """The checkpoint is the run config.json described: same vocabulary, same shape."""
    if ck.get("vocab") != old_vocab:
        raise CorruptFileError(f"{path}'s vocabulary differs from its run's config.json")
    model_cfg, _ = checkpoint.configs(ck)
    for key in SHAPE_KEYS:
        if getattr(model_cfg, key) != getattr(job.model, key):
            raise CorruptFileError(f"{path}'s {key} differs from its run's config.json")


def _read_checkpoint(run: str, which: str) -> tuple[Path, str, dict[str, Any]]:
    """A parent run's checkpoint, read once through one descriptor: its path, the sha256 of the
    bytes read and the checkpoint loaded from those same bytes."""
    path = store.run_dir(run) / f"{which}.pt"
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise CharrnnError(
            f"run {run!r}, the run this one fine-tunes, lost its {path.name} (removed "
            "while this run was being prepared?): nothing was trained; fine-tune from a run "
            "that is there"
        ) from None
    except OSError as exc:
        raise CorruptFileError(f"{path} cannot be read: {exc.strerror or exc}") from None
    return path, hashlib.sha256(data).hexdigest(), checkpoint.load(path, data)
