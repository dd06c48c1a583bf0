"""`charrnn fetch --list`: the registry's corpora and every other cached one, with their state."""

from __future__ import annotations

from typing import Any

from charrnn_cli import paths
from charrnn_cli.corpora import cache, registry
from charrnn_cli.corpora.registry import REGISTRY


def _status(name: str, meta: dict[str, Any] | None) -> str:
    path = cache.text_path(name)
    if meta is None or not path.is_file():
        return "missing"
    return "cached" if path.stat().st_size == meta.get("size") else "damaged"


def list_corpora() -> list[dict]:
    """The registry entries plus every other cached corpus: name, status (cached, missing or
    damaged), size, sha256, source, description and path (when cached)."""
    rows: list[dict] = []
    for entry in REGISTRY.values():
        meta = cache.read_meta(entry.name)
        status = _status(entry.name, meta)
        here = meta if status != "missing" and meta is not None else {}
        rows.append(
            {
                "name": entry.name,
                "status": status,
                "size": here.get("size", entry.size),
                "sha256": here.get("sha256", entry.sha256),
                "source": entry.url or registry.PYSRC,
                "description": entry.description,
                "path": str(cache.text_path(entry.name)) if here else None,
            }
        )
    folder = paths.cache_dir()
    for meta_file in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        name = meta_file.stem
        if name in REGISTRY or not registry.looks_like_name(name):
            continue
        meta = cache.read_meta(name) or {}
        rows.append(
            {
                "name": name,
                "status": _status(name, meta or None),
                "size": meta.get("size"),
                "sha256": meta.get("sha256"),
                "source": meta.get("source"),
                "description": "",
                "path": str(cache.text_path(name)),
            }
        )
    return rows
