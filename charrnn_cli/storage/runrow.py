"""One row of `charrnn runs` (and of the API's `charrnn.runs()`): a run summed up from its
config.json and metrics.jsonl alone, every field checked as it is read back; a damaged field
shows as null and is said in `problems`.
"""

from __future__ import annotations

import time
from typing import Any

from charrnn_cli.storage import readback
from charrnn_cli.storage.store import CONFIG, LN2, _load_config, _mtime, iter_metrics, run_dir


def summary(name: str, problems: list[str] | None = None) -> dict[str, Any]:
    """One row of `charrnn runs`: read from config.json and metrics.jsonl only. A field that is
    damaged shows as null and is said in `problems`; a config.json that is not JSON at all
    is a CorruptFileError (nothing of the run can be shown)."""
    folder = run_dir(name)
    cfg = _load_config(name)
    problem = readback.config_problem(cfg)
    if problem is not None and problems is not None:
        problems.append(f"{folder / CONFIG}: {problem}")
    best, best_row, last = None, {}, {}
    for row in iter_metrics(name, problems):
        last = row
        if row.get("val_loss") is not None and (best is None or row["val_loss"] < best):
            best, best_row = row["val_loss"], row
    model, get = cfg.get("model"), readback.field
    per_byte = get(model, "vocab", _is_str) == "bytes"
    return {
        "name": name,
        "corpus": get(get(cfg, "corpus"), "name", _is_str),
        "cell": get(model, "cell", _is_str),
        "layers": get(model, "layers", readback.is_int),
        "hidden_size": get(model, "hidden_size", readback.is_int),
        "parameters": get(cfg, "parameters", readback.is_int),
        "steps": last.get("step", 0),
        "epochs": last.get("epoch", 0),
        "unit": "byte" if per_byte else "char",  # what best_val_loss is per
        "best_val_loss": best,
        "best_val_bpc": _best_bpc(best, best_row, per_byte),
        "best_val_bpb": best / LN2 if per_byte and best is not None else None,
        "device": get(cfg, "device", _is_str),
        "modified": time.strftime("%Y-%m-%d %H:%M", time.localtime(_mtime(folder))),
        "path": str(folder),
    }


def _best_bpc(best: float | None, row: dict[str, Any], per_byte: bool) -> float | None:
    """Bits per character at the best held-out loss: the loss in bits, or for a byte run the
    bits/char its metrics line gives (None from a charrnn that logged only bits/byte)."""
    if best is None:
        return None
    if not per_byte:
        return best / LN2
    bpc = row.get("val_bpc") if "val_bpb" in row else None
    return bpc if isinstance(bpc, (int, float)) else None


def _is_str(value: Any) -> bool:
    return isinstance(value, str)
