"""`charrnn.train`: the options of `charrnn train` taken as Python keywords, and `train_run`
called with them, as the command calls it.

The keywords are the command's parameters by their own names (`hidden_size=256`, `preset="cpu"`,
`resume=True`), checked against its declarations as Typer checks the flags: the type, the
choices of a Literal, the bounds of `config.BOUNDS`; an unknown name is refused with the names
that exist. A corpus given as text (a `str` holding a newline) is imported into the cache
first. The records reach `on_event` as plain dicts (`event_dict`); progress is the command's
bar or lines on stderr, a live display in a notebook (train_notebook.py), or nothing. A
Ctrl-C saves (as the command does) and then raises KeyboardInterrupt; another signal that
stopped training is raised again once the call's handlers are gone.
"""

from __future__ import annotations

import signal
import typing
from collections.abc import Callable
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charrnn_cli import config
from charrnn_cli.commands import train as train_cmd
from charrnn_cli.commands.train_run import Render, train_run
from charrnn_cli.errors import Interrupted, UsageError, signal_exit_code

if TYPE_CHECKING:
    from charrnn_cli.training.train import Event

# the command's parameters the API takes otherwise: corpus and run by position, `progress`
# for --quiet
NOT_KEYWORDS = ("corpus", "run", "quiet")
# an Event's fields under the names a user's tracker reads
RENAMED = {"train_loss": "loss", "chars_per_sec": "chars_per_s"}


@lru_cache(maxsize=1)
def option_types() -> dict[str, Any]:
    """Each keyword `charrnn.train` takes and its type, from the command's signature."""
    hints = typing.get_type_hints(train_cmd.train)
    return {k: v for k, v in hints.items() if k not in (*NOT_KEYWORDS, "return")}


def checked(options: dict[str, Any]) -> dict[str, Any]:
    """The options, each checked as Typer checks its flag; a UsageError names what is wrong."""
    types = option_types()
    unknown = sorted(set(options) - set(types))
    if unknown:
        raise UsageError(
            f"charrnn.train has no option {', '.join(map(repr, unknown))}; "
            f"its options are {', '.join(sorted(types))}"
        )
    return {key: _checked(key, value, types[key]) for key, value in options.items()}


def _checked(key: str, value: Any, hint: Any) -> Any:
    kinds = [t for t in typing.get_args(hint) or (hint,) if t is not type(None)]
    if value is None:
        if len(kinds) == len(typing.get_args(hint) or (hint,)):  # not Optional: a flag
            raise UsageError(f"Invalid value for {key!r}: None (give True or False)")
        return None
    kind = kinds[0]
    if typing.get_origin(kind) is typing.Literal:
        choices = typing.get_args(kind)
        if value not in choices:
            raise UsageError(
                f"Invalid value for {key!r}: {value!r} is not one of "
                f"{', '.join(map(repr, choices))}."
            )
        return value
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        str: isinstance(value, str | Path),
    }[kind]
    if not ok:
        raise UsageError(
            f"Invalid value for {key!r}: {value!r} is {type(value).__name__}, not {kind.__name__}."
        )
    value = float(value) if kind is float else str(value) if kind is str else value
    if key in config.BOUNDS:
        low, high = config.BOUNDS[key]
        if not low <= value <= high:
            raise UsageError(
                f"Invalid value for {key!r}: {value} is not in the range {low}<=x<={high}."
            )
    return value


def corpus_spec(corpus: str | Path | None) -> str | None:
    """What `--corpus` would take: a name or a path as is; text (a `str` holding a newline)
    imported into the cache under `text-<first 12 hex of its sha256>`, that name returned."""
    if corpus is None or isinstance(corpus, Path):
        return None if corpus is None else str(corpus)
    if not isinstance(corpus, str):
        raise UsageError(f"corpus must be a name, a path or text, not a {type(corpus).__name__}")
    if "\n" not in corpus:
        return corpus
    from charrnn_cli import corpora

    return corpora.import_text(corpus).name


def event_dict(rec: Event) -> dict[str, Any]:
    """A training record as a plain dict: kind, step, total_steps, epoch, elapsed_s, lr, and
    where they apply loss, chars_per_s, eta_s (step); val_loss, val_bpc, best (eval); the
    checkpoints written (save); reason, loss, val_loss (end); what the start record tells."""
    fields = asdict(rec)
    info = fields.pop("info") or {}
    out = {RENAMED.get(k, k): v for k, v in fields.items() if v is not None}
    if rec.kind != "eval":
        out.pop("best", None)
    if rec.kind == "save":
        out["checkpoints"] = rec.reason.split("+")
        out.pop("lr", None)  # a save is not a step
    if not out.get("reason"):
        out.pop("reason", None)
    return {**info, **out}


def train(
    corpus: str | Path | None,
    run: str | None,
    progress: bool,
    on_event: Callable[[dict[str, Any]], Any] | None,
    options: dict[str, Any],
) -> str:
    """Train as `charrnn train` does with these options; the run's name."""
    opts = checked(options)
    if (opts.get("nproc") or 1) > 1:
        raise UsageError(
            "nproc > 1 starts several processes, which only the command line does: "
            "`charrnn train --nproc N`"
        )
    given = {key: opts.get(key) for key in config.OPTION_KEYS}
    hook = None if on_event is None else (lambda rec: on_event(event_dict(rec)))
    try:
        name = train_run(
            corpus_spec(corpus), run, bool(opts.get("resume")), opts.get("preset"),
            opts.get("init_from"), given, render=_render(progress), quiet=not progress,
            on_event=hook,
        )  # fmt: skip
    except Interrupted as exc:
        _raise_again(exc)
    assert name is not None  # one process: the main one
    return name


def _render(progress: bool) -> Render:
    from charrnn_cli.commands import train_notebook

    if progress and train_notebook.in_notebook():
        return train_notebook.render
    from charrnn_cli.commands.train_render import render

    return render


def _raise_again(exc: Interrupted) -> typing.NoReturn:
    """After a signal stopped training and the run was saved: KeyboardInterrupt for Ctrl-C;
    another signal is delivered again to whatever handled it before the call (a default
    SIGTERM ends the process, as it would have); if that returns, the Interrupted error."""
    if exc.exit_code == signal_exit_code(signal.SIGINT):
        raise KeyboardInterrupt(str(exc)) from None
    if exc.exit_code > 128:
        signal.raise_signal(exc.exit_code - 128)
    raise exc
