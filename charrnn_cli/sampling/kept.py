"""The samples a run keeps: `samples.jsonl` in its folder, one JSON object a line.

Each line is a sample drawn while the run trained (sampling/during_training.py): its `step`,
the held-out loss `val_loss` at that step (null where the step was not evaluated), the
`temperature` and the `text`. Written as metrics.jsonl is (store.MetricsWriter: a whole line a
write, flushed, a torn tail ended), cut back to the checkpoint's step on resume, and read back
line by line with each field checked: a damaged line is skipped and said, never an error, and a
run without the file has no samples. Torch-free: `charrnn runs show` reads it.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from charrnn_cli.storage import paths, readback, store

SAMPLES = "samples.jsonl"


def writer(name: str, upto_step: int) -> store.MetricsWriter:
    """The writer of a run's samples, those after `upto_step` dropped first (a new run: 0; a
    resumed one: its checkpoint's step), so a resumed run keeps one sample a step."""
    path = store.run_dir(name) / SAMPLES
    if path.exists():
        rows = [r for r in read(name) if r["step"] <= upto_step]
        paths.atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
    return store.MetricsWriter(name, SAMPLES)


def read(name: str, problems: list[str] | None = None) -> list[dict[str, Any]]:
    """A run's samples in step order ([] when it kept none); the damaged lines are skipped and
    said in `problems` (file and line), as metrics lines are."""
    path = store.run_dir(name) / SAMPLES
    said: list[str] = []
    rows: list[dict[str, Any]] = []
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return []
    except OSError as exc:
        said.append(f"{path}: cannot be read ({exc.strerror})")
        fh = None
    with fh or contextlib.nullcontext():
        for number, raw, ended in readback.lines(fh) if fh is not None else ():
            if raw is not None and not raw.strip():
                continue
            row, why = sample_row(raw)
            if why is not None and ended:  # a torn last line is a kill mid-write: quiet
                said.append(f"{path} line {number}: {why}")
            if row is not None:
                rows.append(row)
    if problems is not None:
        more = len(said) - readback.MAX_PROBLEMS
        problems.extend(said[: readback.MAX_PROBLEMS])
        problems.extend([f"{path}: {more} more damaged lines"] * (more > 0))
    return sorted(rows, key=lambda r: r["step"])


def sample_row(raw: bytes | None) -> tuple[dict[str, Any] | None, str | None]:
    """One samples.jsonl line: (the sample, None) or (None, what is wrong with it)."""
    row, problem = readback.json_line(raw)
    if row is None:
        return None, problem
    if not readback.is_int(row.get("step")):
        return None, "step is not a whole number"
    if not isinstance(row.get("text"), str):
        return None, "text is not a string"
    for key in ("val_loss", "temperature"):
        value = row.get(key)
        if value is not None and not (readback.is_number(value) and value >= 0):
            return None, f"{key} is not a number"
    return row, None


def latest(name: str) -> dict[str, Any] | None:
    """The run's last sample, or None."""
    rows = read(name)
    return rows[-1] if rows else None
