"""The checkpoint store: one folder per run under `paths.data_dir()`.

    runs/<name>/config.json    model + training config, corpus, vocabulary, versions, format
                 metrics.jsonl  one JSON object a line (step, epoch, elapsed_s, lr, train_loss,
                                chars_per_sec; val_loss and val_bpc on evaluation lines)
                 samples.jsonl  the samples drawn as it trained (sampling/kept.py)
                 last.pt        the latest checkpoint (exact resume)
                 best.pt        the checkpoint with the lowest held-out loss
                 .lock          held by the one trainer writing this run

Listing, resolving names (`latest`, a unique prefix) and shell completion read only
`config.json` and `metrics.jsonl`: no torch. The torch side (checkpoint.py) writes the `.pt`
files into the folders this module hands out.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from charrnn_cli.errors import BusyError, CharrnnError, CorruptFileError, UsageError
from charrnn_cli.storage import locks, paths, readback

FORMAT_VERSION = 1
CONFIG = "config.json"
METRICS = "metrics.jsonl"
LN2 = math.log(2)  # nats per bit: a loss in nats / LN2 is bits per character
CONFIG_MAX_BYTES = 64 << 20  # config.json holds the vocabulary: at most ~4 MB of it

# the one name rule (paths.check_name), labelled for runs: refuses `/`, `..` and absolute paths
check_name = functools.partial(paths.check_name, kind="run")


def runs_dir() -> Path:
    return paths.data_dir()


def new_name(corpus: str, cell: str) -> str:
    """A readable, valid name such as `tinyshakespeare-lstm-20261128-1704` for a run of
    `corpus`, whatever the corpus's file is called (`_names.txt`, `a..b.txt`); not yet
    claimed: `lock(name, pick=True)` takes it or the first free `name-2`, `name-3`, ..."""
    stem = paths.make_name(corpus, limit=40)
    return paths.make_name(f"{stem}-{cell}-{time.strftime('%Y%m%d-%H%M')}", fallback="run")


def _candidates(name: str, pick: bool) -> Iterator[str]:
    """`name`, then (when charrnn picked it) `name-2`, `name-3`, ..."""
    yield name
    for n in range(2, 10_000 if pick else 2):
        yield f"{name[: paths.NAME_MAX - 6]}-{n}"


def run_dir(name: str) -> Path:
    return runs_dir() / check_name(name)


def all_names() -> list[str]:
    """Names of the runs that have a config, newest first."""
    root = runs_dir()
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if (p / CONFIG).is_file() and paths.is_name(p.name)]
    found.sort(key=lambda p: _mtime(p), reverse=True)
    return [p.name for p in found]


def _mtime(folder: Path) -> float:
    files = [folder / f for f in (CONFIG, METRICS, "last.pt")]
    stamps = [f.stat().st_mtime for f in files if f.exists()]
    return max(stamps, default=0.0)


def resolve(name: str | None) -> str:
    """A run name from a name, a unique prefix, `latest` or None (the latest)."""
    names = all_names()
    if not names:
        raise CharrnnError("no runs yet: train one with `charrnn train` (see `--help`)")
    if name is None or name == "latest":
        return names[0]
    check_name(name)
    if name in names:
        return name
    matches = [n for n in names if n.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UsageError(f"run {name!r} is ambiguous: {', '.join(sorted(matches)[:5])}")
    raise CharrnnError(f"no run named {name!r}; `charrnn runs` lists them")


def read_config(name: str) -> dict[str, Any]:
    """A run's config.json, every field checked (it may have been edited by hand): a
    CorruptFileError naming the file and the field when it cannot be used. An exported
    folder's config.json is read in the same shape (exported.run_config)."""
    from charrnn_cli.storage import exported

    if exported.is_folder(name):
        return exported.run_config(paths.user_path(name))
    path = run_dir(name) / CONFIG
    data = _load_config(name)
    version = data.get("format", 0)
    if readback.is_int(version) and version > FORMAT_VERSION:
        raise CorruptFileError(
            f"run {name!r} was written by a newer charrnn (format {version}, this one reads up "
            f"to {FORMAT_VERSION}): upgrade charrnn"
        )
    problem = readback.config_problem(data)
    if problem is not None:
        raise CorruptFileError(f"{path}: {problem}; fix it by hand or remove the run")
    return data


def _load_config(name: str) -> dict[str, Any]:
    """config.json parsed, not yet checked (a JSON object, or a CorruptFileError naming it)."""
    if not (run_dir(name) / CONFIG).exists():
        raise CharrnnError(f"run {name!r} has no {CONFIG}")
    return readback.load_json(run_dir(name) / CONFIG, CONFIG_MAX_BYTES)


def write_config(name: str, data: dict[str, Any]) -> None:
    data = {"format": FORMAT_VERSION, **data}
    paths.atomic_write_text(run_dir(name) / CONFIG, json.dumps(data, indent=2) + "\n")


def read_metrics(name: str, problems: list[str] | None = None) -> list[dict[str, Any]]:
    """The metrics lines (see `iter_metrics`)."""
    return list(iter_metrics(name, problems))


def iter_metrics(name: str, problems: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """The metrics lines, each checked field by field; a damaged line is skipped and said in
    `problems` (file and line). A torn last line (a kill mid-write) is skipped quietly."""
    return readback.metrics_rows(run_dir(name) / METRICS, problems)


def rewrite_metrics(name: str, upto_step: int) -> None:
    """Keep only complete lines up to `upto_step` (on resume: the checkpoint's step), so the
    file stays valid JSON lines and the resumed run does not repeat steps."""
    rows = [r for r in read_metrics(name) if r["step"] <= upto_step]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    paths.atomic_write_text(run_dir(name) / METRICS, text)


class MetricsWriter:
    """Appends one JSON line per record, flushed, each line whole (one write call), to the
    run's metrics.jsonl (or to another of its JSON-lines files: `file`)."""

    def __init__(self, name: str, file: str = METRICS) -> None:
        path = self.path = run_dir(name) / file
        # a kill mid-line leaves a torn tail: end it so the next record starts a fresh line
        with paths.storage_errors(path):
            if path.exists() and path.stat().st_size:
                with open(path, "rb") as fh:
                    fh.seek(-1, os.SEEK_END)
                    torn = fh.read(1) != b"\n"
                if torn:
                    with open(path, "ab") as fh:
                        fh.write(b"\n")
            self._fh = open(path, "a", encoding="utf-8")  # closed in close()

    def write(self, record: dict[str, Any]) -> None:
        with paths.storage_errors(self.path):  # a full disk: one clear line, not a traceback
            self._fh.write(json.dumps(record) + "\n")
            self._fh.flush()

    def close(self) -> None:
        with contextlib.suppress(OSError):  # a line the full disk refused is already reported
            self._fh.close()


def remove(name: str) -> Path:
    folder = run_dir(name)
    shutil.rmtree(folder)
    return folder


@contextlib.contextmanager
def lock(name: str, pick: bool = False) -> Iterator[str]:
    """Hold the run's lock while training; a second trainer is refused at once. Yields the
    name held: with `pick` (a name charrnn chose, not the user) the first of `name`,
    `name-2`, ... that no other trainer holds and no run has, so two trainings started at
    the same instant take two names instead of one refusing the other.

    Once held, temp files of a trainer killed mid-save are swept; a run folder this call made
    that holds nothing but the lock at the end (training failed before writing) is removed."""
    for candidate in _candidates(name, pick):
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(_lock_one(candidate, pick))
            except BusyError:
                if pick:
                    continue
                raise
            yield candidate
            return
    raise BusyError(f"every name from {name!r} on is taken; pick one with --run")


@contextlib.contextmanager
def _lock_one(name: str, fresh: bool) -> Iterator[None]:
    folder = run_dir(name)
    created = not folder.exists()
    with paths.storage_errors(folder):
        folder.mkdir(parents=True, exist_ok=True)
    with locks.file_lock(folder / ".lock") as run_lock:
        try:
            if not run_lock.held:
                raise BusyError(
                    f"run {name!r} is being trained by {run_lock.holder()}; "
                    "wait for it or use another --run"
                )
            if fresh and (folder / CONFIG).exists():  # taken between the pick and the lock
                raise BusyError(f"run {name!r} already exists")
            paths.sweep_stale_temps(folder)
            yield
        finally:
            if created and run_lock.held:
                with contextlib.suppress(OSError):
                    if [p.name for p in folder.iterdir()] == [".lock"]:
                        (folder / ".lock").unlink()
                        folder.rmdir()


def complete_run_name(incomplete: str) -> list[str]:
    """Shell completion for --run: reads folder names only."""
    return [n for n in all_names() if n.startswith(incomplete)] + (
        ["latest"] if "latest".startswith(incomplete) else []
    )


def new_run(name: str, config: dict[str, Any]) -> MetricsWriter:
    """Make a new run's folder and its config.json (the job's record, training/job.py, with
    this version and the time added); returns the run's metrics writer."""
    from charrnn_cli import __version__

    config = {**config, "charrnn": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    _make_folder(name)
    write_config(name, config)
    rewrite_metrics(name, 0)
    return MetricsWriter(name)


def resume_run(
    name: str, train: dict[str, Any], world_size: int, step: int, **facts: Any
) -> MetricsWriter:
    """Ready a resumed run's folder; returns its metrics writer.

    `train` (the job's train section) replaces the stored one, so limits given anew stay the
    run's for a later --resume; the world size is stored with it because batch_size counts the
    streams of one process; `facts` (the precision this machine trains in) replace the stored
    ones too. The metrics are cut back to the checkpoint's `step`, so the resumed run does
    not log its steps twice."""
    _make_folder(name)
    stored = read_config(name)
    stored["train"] = train
    stored.update(world_size=world_size, **facts)
    stored.pop("format", None)  # write_config puts this version's first
    write_config(name, stored)
    rewrite_metrics(name, step)
    return MetricsWriter(name)


def _make_folder(name: str) -> None:
    with paths.storage_errors(run_dir(name)):
        run_dir(name).mkdir(parents=True, exist_ok=True)
