"""A fine-tuned run's parent, torch-free: the plan of `train --init-from`, and the lineage.

`plan` reads the parent's config.json and checks what the new run may and may not change: the
model's shape is the parent's (an option given with another value is refused, naming the
parent's), everything else is the new run's. The vocabulary is the parent's, in its order, then
the new corpus's characters the parent never saw, sorted: matching is by character, never by
index, so an old character keeps its id and its trained rows. `remap` moves the corpus's ids
(which index its own sorted vocabulary) onto such a vocabulary through a lookup table; the
text is not encoded again. `chain` walks a run's parents for `charrnn runs show`.

The torch side (finetune.py) loads the checkpoint and extends its rows; nothing here writes to
the parent run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from charrnn_cli import config
from charrnn_cli.errors import CharrnnError, CorruptFileError, UsageError
from charrnn_cli.storage import paths, readback, store
from charrnn_cli.training.job import ParentRecord

if TYPE_CHECKING:
    from charrnn_cli.data.encode import Encoded

# The options that fix the model's parameters: a fine-tuned run takes them from its parent.
# Every model field but the vocabulary's size (the data's) and the regularisers (training's):
# cell, layers, hidden_size, embed_size, tie_weights, and any field added later.
SHAPE_KEYS = tuple(
    f.name
    for f in dataclasses.fields(config.ModelConfig)
    if f.name not in ("vocab_size", *config.REGULARISERS)
)
CHECKPOINTS = ("best", "last")
FOLDER = "folder"  # the `checkpoint` of a parent that is an exported folder (its path is `run`)
MAX_DEPTH = 64  # generations `chain` follows: a hand-edited config could make a cycle
SHOWN_ADDED = 20  # the first added characters named on stderr


@dataclass
class Plan:
    """What `train --init-from` takes from the parent."""

    name: str  # the parent run
    checkpoint: str  # best | last
    config: dict[str, Any]  # the parent's config.json

    @property
    def vocab(self) -> str:
        return str(self.config.get("vocab", ""))


def parse(spec: str) -> tuple[str, str]:
    """`RUN[:best|last]` as (run, checkpoint); the run may be a unique prefix or `latest`, or
    the path of an exported folder: (its absolute path, FOLDER)."""
    from charrnn_cli import export

    if export.is_folder(spec):
        return str(paths.user_path(spec).resolve()), FOLDER
    name, sep, which = spec.rpartition(":")
    if not sep:
        name, which = spec, "best"
    if which not in CHECKPOINTS:
        raise UsageError(f"--init-from {spec}: the checkpoint is best or last, not {which!r}")
    return store.resolve(name), which


def plan(spec: str) -> Plan:
    """The parent named by `spec`, checked: it exists, has that checkpoint and a vocabulary."""
    name, which = parse(spec)
    if which == FOLDER:
        from charrnn_cli import export

        return Plan(name, which, export.run_config(paths.user_path(name)))
    if not (store.run_dir(name) / f"{which}.pt").is_file():
        raise CharrnnError(
            f"--init-from {spec}: run {name!r} has no {which}.pt"
            + (" (try :last)" if which == "best" else "")
        )
    stored = store.read_config(name)
    if not stored.get("vocab"):
        raise CharrnnError(f"--init-from {spec}: run {name!r} records no vocabulary")
    return Plan(name, which, stored)


def shaped(parent: Plan, given: dict[str, Any]) -> dict[str, Any]:
    """The options given, with the model's shape set to the parent's; a shape option given with
    another value is refused, naming the parent's."""
    try:  # from_dict fills what older runs did not store with the value they trained with
        stored = dataclasses.asdict(config.from_dict(parent.config)[0])
    except (KeyError, TypeError, AttributeError) as exc:
        raise CorruptFileError(f"run {parent.name!r}'s config.json is damaged: {exc}") from None
    for key in SHAPE_KEYS:
        value = given.get(key)
        if value is not None and value != stored[key]:
            raise UsageError(
                f"{_option(key, value)} differs from the parent run {parent.name!r} "
                f"({_option(key, stored[key])}): a fine-tuned run keeps its parent's model "
                f"shape (drop {config.flag(key)}, or train a new run without --init-from)"
            )
    return {**given, **{key: stored[key] for key in SHAPE_KEYS}}


def _option(key: str, value: Any) -> str:
    """An option as typed: `--hidden-size 64`, `--tie-weights` or `--no-tie-weights`."""
    if isinstance(value, bool):
        return config.flag(key) if value else "--no-" + config.flag(key)[2:]
    return f"{config.flag(key)} {value}"


def merge_vocab(parent: str, corpus: str) -> str:
    """The parent's vocabulary in its order, then the corpus's characters it lacks, sorted."""
    known = set(parent)
    return parent + "".join(sorted({c for c in corpus if c not in known}))


def remap(data: Encoded, vocab: str, progress: Callable | None = None) -> Encoded:
    """`data` with its ids moved onto `vocab`, which must hold every character of the text
    (idmaps.remapped: a mapped cache entry of their own for a large corpus)."""
    from charrnn_cli.data.idmaps import remapped

    return remapped(data, vocab, progress)


def record(parent: Plan, vocab: str) -> ParentRecord:
    """The parent as the new run's config.json records it (step and sha256 come when the
    checkpoint is read)."""
    corpus = parent.config.get("corpus", {})
    return ParentRecord(parent.name, parent.checkpoint, dict(corpus), vocab[len(parent.vocab) :])


def describe(parent: ParentRecord) -> str:
    """The log line of a fine-tuning start: the parent, how many characters were added and
    the first few."""
    added = parent.added
    if not added:
        what = "no characters added: the parent's vocabulary covers the new text"
    else:
        shown = added[:SHOWN_ADDED] + ("..." if len(added) > SHOWN_ADDED else "")
        what = f"{len(added)} character{'s' if len(added) != 1 else ''} added: {shown!r}"
    source = parent.run if parent.checkpoint == FOLDER else f"{parent.run} ({parent.checkpoint}.pt)"
    return f"fine-tuning {source}: {what}"


def parent_of(name: str) -> dict[str, Any] | None:
    """The `parent` record in a run's config.json: None for a run trained from scratch, and for
    one whose config.json or record is damaged (listing a run must not fail on its lineage:
    `runrow.summary` and `store.read_config` say what is wrong)."""
    try:
        stored = readback.load_json(store.run_dir(name) / store.CONFIG, store.CONFIG_MAX_BYTES)
    except CharrnnError:
        return None
    parent = stored.get("parent")
    return parent if readback.parent_problem(parent) is None else None


def chain(name: str) -> list[dict[str, Any]]:
    """The run's parent, grandparent, ...: each record, with `exists` False for a run that
    has been removed since (the walk stops there)."""
    out: list[dict[str, Any]] = []
    seen = {name}
    parent = parent_of(name)
    while parent is not None and len(out) < MAX_DEPTH:
        run = str(parent.get("run", ""))
        there = paths.is_name(run) and run not in seen
        there = there and (store.run_dir(run) / store.CONFIG).is_file()
        out.append({**parent, "exists": there})
        if not there:
            break
        seen.add(run)
        parent = parent_of(run)
    return out
