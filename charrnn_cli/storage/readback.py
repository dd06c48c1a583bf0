"""Checking what charrnn reads back from its own files, field by field: every one may have been
edited or damaged by hand.

A run's config.json (and the config inside a checkpoint) must have the sections and field types
the dataclasses of config.py declare, and a fine-tuned run's `parent` record its fields; a
metrics.jsonl line must be a JSON object with a whole `step` and numbers (or null) where numbers
go. Numbers are checked for range too (config.BOUNDS, the choices of a Literal, the rules of
config.check; a metric is never negative), so a hand-edited `"layers": 0` is one line naming
the file, never an error deep in torch. The checks return what is wrong, in words that name
the field, and leave it to the caller to name the file and decide: refuse the command on that
run, or list the run with a warning.
Standard library and config.py only (no torch).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import IO, Any, Literal, get_args, get_origin, get_type_hints

from charrnn_cli import config
from charrnn_cli.config import ModelConfig, TrainConfig
from charrnn_cli.errors import CorruptFileError, UsageError

MAX_LINE = 1 << 16  # bytes in a metrics line; charrnn writes about 200
MAX_PROBLEMS = 3  # damaged lines of a file named one by one; the rest are counted
INT_MAX = 2**63 - 1
# the numbers of a metrics line (all optional: evaluation lines carry val_*, step lines lr...)
METRIC_NUMBERS = ("epoch", "elapsed_s", "lr", "train_loss", "chars_per_sec", "val_loss", "val_bpc")
METRIC_NUMBERS += ("val_bpb",)  # a byte run's: bits per byte (its val_bpc is per character)


def is_int(value: Any) -> bool:
    """A whole number in range (JSON has no bool/int distinction in Python: True is not 1)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= INT_MAX


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool; NaN and infinity are not written by charrnn)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return ok and math.isfinite(value)


_KINDS = {
    "str": lambda v: isinstance(v, str),
    "int": is_int,
    "float": is_number,
    "bool": lambda v: isinstance(v, bool),
    "int | None": lambda v: v is None or is_int(v),
    "float | None": lambda v: v is None or is_number(v),
}
_WORDS = {
    "str": "a string",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "int | None": "a whole number or null",
    "float | None": "a number or null",
}


def _kind(f: Any) -> str:
    """A dataclass field's kind, from its default (annotations may be aliases of Literal)."""
    if f.default is None:
        return "int | None" if "int" in str(f.type) else "float | None"
    return type(f.default).__name__


@functools.cache
def _choices(kind: type) -> dict[str, tuple[str, ...]]:
    """The fields of a config dataclass that take one of a few words (a Literal), and those."""
    hints = get_type_hints(kind)
    return {name: get_args(hint) for name, hint in hints.items() if get_origin(hint) is Literal}


def _range_problem(label: str, value: Any) -> str | None:
    """A field outside its range in config.BOUNDS (None: no bound, or no value)."""
    key = label.rsplit(".", 1)[-1]
    if key not in config.BOUNDS or value is None:
        return None
    low, high = config.BOUNDS[key]
    if value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"at least {low}"
        return f"{label} is {shown(value)}, out of range ({span})"
    return None


def section_problem(section: Any, kind: type, label: str) -> str | None:
    """What is wrong with a config section (`model` or `train`) checked against the dataclass
    `kind`: each field's type, its range (config.BOUNDS) or its choices (a Literal); fields it
    does not know are left alone (a newer charrnn may add some)."""
    if not isinstance(section, dict):
        return f"{label} is not a JSON object"
    choices = _choices(kind)
    for f in fields(kind):
        if f.name not in section:
            continue
        value, where = section[f.name], f"{label}.{f.name}"
        check = _KINDS.get(_kind(f))
        if check is not None and not check(value):
            return f"{where} is {shown(value)}, not {_WORDS[_kind(f)]}"
        if f.name in choices and value not in choices[f.name]:
            return f"{where} is {shown(value)}, not one of {', '.join(choices[f.name])}"
        if (why := _range_problem(where, value)) is not None:
            return why
    return None


def _rules_problem(data: dict[str, Any]) -> str | None:
    """What the cross-field rules (config.check) and the vocabulary's size say is wrong with
    sections whose fields each passed."""
    try:
        model, train = config.from_dict(data)
        config.check(model, train)
    except UsageError as exc:  # said with option names: the fields have the same
        return str(exc)
    except (TypeError, ValueError) as exc:
        return f"the model and train sections do not make a config ({exc})"
    vocab = data.get("vocab")
    if isinstance(vocab, str) and model.vocab_size and model.vocab_size != len(vocab):
        return f"model.vocab_size is {model.vocab_size}, but vocab has {len(vocab)} characters"
    return None


def config_problem(data: Any, *, corpus: bool = True) -> str | None:
    """What is wrong with a run's config (config.json, or the config in a checkpoint): its
    format, sections and their fields; with `corpus`, the corpus record's shape too."""
    if not isinstance(data, dict):
        return "not a JSON object"
    if "model" not in data or "train" not in data:
        return "lacks the model and train sections"
    if "format" in data and not is_int(data["format"]):
        return f"format is {shown(data['format'])}, not a whole number"
    why = section_problem(data["model"], ModelConfig, "model")
    why = why or section_problem(data["train"], TrainConfig, "train")
    if why is None and corpus and "corpus" in data and not isinstance(data["corpus"], dict):
        why = "corpus is not a JSON object"
    if why is None and "vocab" in data and not isinstance(data["vocab"], str):
        why = "vocab is not a string"
    return why or _rules_problem(data) or parent_problem(data.get("parent"))


def parent_problem(parent: Any) -> str | None:
    """What is wrong with a fine-tuned run's `parent` record (lineage.py; None: trained from
    scratch): the run's name is needed; the other fields may be missing or null, not of another
    kind."""
    if parent is None:
        return None
    if not isinstance(parent, dict):
        return "parent is not a JSON object"
    if not isinstance(parent.get("run"), str):
        return f"parent.run is {shown(parent.get('run'))}, not a string"
    for key, kind in {"checkpoint": "str", "added": "str", "step": "int", "sha256": "str"}.items():
        if parent.get(key) is not None and not _KINDS[kind](parent[key]):
            return f"parent.{key} is {shown(parent[key])}, not {_WORDS[kind]}"
    if parent.get("corpus") is not None and not isinstance(parent["corpus"], dict):
        return "parent.corpus is not a JSON object"
    return None


def _nonnegative(value: Any) -> bool:
    """Every number of a metrics line (time, rate, loss, speed, epoch) is finite and >= 0."""
    return is_number(value) and value >= 0


def field(data: Any, key: str, check: Any = None) -> Any:
    """`data[key]` when `data` is a dict holding a value that passes `check`, else None: for
    showing what can be shown of a damaged file."""
    if not isinstance(data, dict):
        return None
    value = data.get(key)
    return value if value is not None and (check is None or check(value)) else None


def json_line(raw: bytes | None) -> tuple[dict[str, Any] | None, str | None]:
    """One line of a JSON-lines file as an object: (the object, None) or (None, what is
    wrong: too long, not UTF-8, not JSON, not an object)."""
    if raw is None:
        return None, f"longer than {MAX_LINE:,} bytes"
    try:
        row = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except ValueError:
        return None, "not JSON"
    if not isinstance(row, dict):
        return None, "not a JSON object"
    return row, None


def metrics_row(raw: bytes | None) -> tuple[dict[str, Any] | None, str | None]:
    """One metrics.jsonl line: (the row, what was wrong). A row whose `step` is unusable is
    dropped; a bad number in it is dropped from the row, and said."""
    row, problem = json_line(raw)
    if row is None:
        return None, problem
    if not is_int(row.get("step")):
        return None, f"step is {shown(row.get('step'))}, not a whole number"
    bad = [k for k in METRIC_NUMBERS if row.get(k) is not None and not _nonnegative(row[k])]
    for key in bad:
        del row[key]
    return row, (f"{', '.join(bad)} not a number" if bad else None)


def load_json(path: Path, max_bytes: int) -> dict[str, Any]:
    """A JSON object from `path` (read up to `max_bytes`), or a CorruptFileError naming it."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as exc:  # a folder, no permission...
        raise CorruptFileError(f"{path} cannot be read: {exc.strerror or exc}") from None
    if len(raw) > max_bytes:
        raise CorruptFileError(f"{path} is larger than any {path.name} charrnn writes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise CorruptFileError(f"{path} is not valid JSON ({str(exc)[:120]})") from None
    if not isinstance(data, dict):
        raise CorruptFileError(f"{path} is not valid JSON for charrnn (not an object)")
    return data


def metrics_rows(path: Path, problems: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """The rows of a metrics.jsonl file, each checked; the damaged lines are said in `problems`
    (the first MAX_PROBLEMS by line, then a count). A torn last line (a kill mid-write, no
    newline yet) is skipped quietly: the next trainer ends it."""
    said: list[str] = []
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return
    except OSError as exc:
        said.append(f"{path}: cannot be read ({exc.strerror})")
        fh = None
    with fh or contextlib.nullcontext():
        for number, raw, ended in lines(fh) if fh is not None else ():
            if raw is not None and not raw.strip():
                continue
            row, why = metrics_row(raw)
            if why is not None and (ended or row is not None):
                said.append(f"{path} line {number}: {why}")
            if row is not None:
                yield row
    if problems is not None:
        more = len(said) - MAX_PROBLEMS
        problems.extend(said[:MAX_PROBLEMS] + ([f"{path}: {more} more damaged lines"] * (more > 0)))


def lines(fh: IO[bytes]) -> Iterator[tuple[int, bytes | None, bool]]:
    """(line number, bytes or None when longer than MAX_LINE, whether it ended with a newline):
    memory stays bounded whatever the file holds."""
    number = 0
    while raw := fh.readline(MAX_LINE + 1):
        number += 1
        ended = raw.endswith(b"\n")
        if len(raw) > MAX_LINE and not ended:
            while (rest := fh.readline(MAX_LINE)) and not rest.endswith(b"\n"):
                pass
            yield number, None, True
            continue
        yield number, raw, ended


def shown(value: Any) -> str:
    """A field's value as an error names it: JSON, ASCII, at most 40 characters."""
    text = json.dumps(value, ensure_ascii=True, default=str) if value is not None else "missing"
    return text if len(text) <= 40 else text[:37] + "..."
