"""`charrnn fetch --list`: the registry's corpora and every other cached name, with their state."""

from __future__ import annotations

from typing import Any

from charrnn_cli.corpora import cache, registry
from charrnn_cli.corpora.registry import REGISTRY
from charrnn_cli.storage import paths


def _status(meta: dict[str, Any] | None, problem: str | None) -> str:
    """cached, missing or damaged; by size only (hashing every text would make listing slow:
    a text altered at the same size is found, and fetched again, when it is used)."""
    if problem is not None:
        return "damaged"
    if meta is None:
        return "missing"
    try:
        size = cache.blob_path(meta["sha256"]).stat().st_size
    except OSError:
        return "missing"
    return "cached" if size == meta["size"] else "damaged"


def _row(name: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The state of one name (its metadata checked field by field), and its metadata."""
    meta, problem = cache.read_meta(name), cache.meta_problem(name)
    status = _status(meta, problem)
    row: dict[str, Any] = {"name": name, "status": status}
    if problem is not None:
        row["problem"] = problem
    here = meta if meta is not None and status != "missing" else None
    row["path"] = str(cache.blob_path(meta["sha256"])) if here is not None else None
    return row, meta


def list_corpora() -> list[dict]:
    """The registry entries plus every other cached name: name, status (cached, missing or
    damaged), size, sha256, source, description, path (when cached) and, for a name whose
    metadata is damaged, `problem` (the file and what is wrong with it)."""
    cache.migrate()
    rows: list[dict] = []
    for entry in REGISTRY.values():
        row, meta = _row(entry.name)
        here = meta if row["path"] is not None and meta is not None else {}
        row.update(
            size=here.get("size", entry.size),
            sha256=here.get("sha256", entry.sha256),
            source=entry.url or registry.PYSRC,
            description=entry.description,
        )
        rows.append(_ordered(row))
    folder = paths.cache_dir()
    for meta_file in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        name = meta_file.stem
        if name in REGISTRY or not paths.is_name(name):
            continue
        row, meta = _row(name)
        meta = meta or {}
        row.update(size=meta.get("size"), sha256=meta.get("sha256"), source=meta.get("source"))
        row["description"] = ""
        rows.append(_ordered(row))
    return rows


def _ordered(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "status", "size", "sha256", "source", "description", "path", "problem")
    return {k: row[k] for k in keys if k in row}
