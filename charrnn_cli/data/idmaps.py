"""Ids that live in a memory-mapped file: counting them, letting their pages go, and moving
them onto another vocabulary without holding them.

A fine-tuned run's vocabulary is its parent's, in the parent's order, then the characters the
parent never saw (lineage.py), while a corpus's cached ids index its own sorted vocabulary.
`remapped` moves every id through a lookup table. For a cached (mapped) encoding the result is
written in pieces into a cache entry of its own, `encoded/<sha256>.<vocab tag>.npy`, checked
like the encoding's (the `.json` records the `.npy`'s sha256) and mapped read-only, so a
fine-tuned run's memory does not grow with its corpus either. `fetch --gc` frees such entries
with their text.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import mmap
from collections.abc import Callable
from pathlib import Path

import numpy as np

from charrnn_cli.data import utf8scan
from charrnn_cli.data.encode import LOCK_WAIT_S, unwritable
from charrnn_cli.data.encoded import CHUNK, Encoded, file_sha256, npy_header, smallest_dtype
from charrnn_cli.errors import CharrnnError, WriteError
from charrnn_cli.storage import locks, paths

IN_MEMORY = 1 << 24  # ids below this many are moved in memory: not worth a cache entry


def count_ids(ids: np.ndarray, size: int) -> np.ndarray:
    """(size,) int64 occurrences of each id, a few MB of temporaries at a time; the pages of
    a memory map that were read are let go again (see `release`)."""
    counts = np.zeros(size, dtype=np.int64)
    for start in range(0, len(ids), utf8scan.COUNT_STEP):
        part = ids[start : start + utf8scan.COUNT_STEP]
        counts += np.bincount(part, minlength=size)
        release(part)
    return counts


def release(view: np.ndarray) -> None:
    """Drop the pages of a contiguous view of a memory map from this process's resident set:
    they stay in the page cache, and a later read maps them again. Counting a held-out tail
    of 100 MB would otherwise count as 100 MB of the trainer's memory. A no-op for arrays in
    memory, and where the platform cannot."""
    mm = getattr(view, "_mmap", None)
    if mm is None or not view.flags.c_contiguous or not hasattr(mm, "madvise"):
        return
    with contextlib.suppress(OSError, ValueError, AttributeError, BufferError):
        base = np.frombuffer(mm, dtype=np.uint8).__array_interface__["data"][0]
        start = view.__array_interface__["data"][0] - base
        page = mmap.PAGESIZE
        first, end = -(-start // page) * page, (start + view.nbytes) // page * page
        if end > first:  # whole pages inside the view only: a neighbour may be in use
            mm.madvise(mmap.MADV_DONTNEED, first, end - first)


def lookup(old: str, new: str) -> np.ndarray:
    """(len(old),) the id in `new` of each character of `old`; CharrnnError naming the
    characters `new` lacks."""
    index = {c: i for i, c in enumerate(new)}
    missing = [c for c in old if c not in index]
    if missing:
        shown = ", ".join(repr(c) for c in missing[:10])
        raise CharrnnError(f"the text has characters outside the run's vocabulary: {shown}")
    return np.array([index[c] for c in old], dtype=smallest_dtype(len(new)))


def remap_ids(ids: np.ndarray, old: str, new: str) -> np.ndarray:
    """A piece of ids (a held-out tail), moved from vocabulary `old` onto `new`, in memory."""
    return ids if old == new else lookup(old, new)[ids]


def remapped(
    data: Encoded, vocab: str, progress: Callable[[int, int | None], None] | None = None
) -> Encoded:
    """`data` with its ids moved onto `vocab`, which must hold every character of the text:
    mapped from a cache entry of their own when `data`'s are mapped (see the docstring).
    `progress(done, total)` hears about the characters moved into a new entry."""
    if data.vocab == vocab:
        return data
    table = lookup(data.vocab, vocab)
    counts = np.zeros(len(vocab), dtype=np.int64)
    counts[table] = data.counts
    ids = None
    if isinstance(data.ids, np.memmap) and len(data.ids) >= IN_MEMORY:
        ids_path, _ = _files(data, vocab)
        # one writer: the ranks of a data-parallel run (or two trainings) wait for it and
        # then map its entry, rather than each writing the whole corpus again
        with locks.file_lock(ids_path.with_suffix(".lock"), wait=LOCK_WAIT_S, best_effort=True):
            ids = _cached(data, vocab)
            ids = _write(data, vocab, table, progress) if ids is None else ids
    if ids is None:  # small, held in memory, or a cache that cannot be written
        ids = table[data.ids]
    return dataclasses.replace(data, ids=ids, vocab=vocab, counts=counts)


def _files(data: Encoded, vocab: str) -> tuple[Path, Path]:
    tag = hashlib.sha256(vocab.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    stem = f"{data.sha256}.{tag}" if data.kind == "chars" else f"{data.sha256}.{data.kind}.{tag}"
    folder = paths.cache_dir() / "encoded"
    return folder / f"{stem}.npy", folder / f"{stem}.json"


def _cached(data: Encoded, vocab: str, hashed: bool = False) -> np.ndarray | None:
    """The moved ids, mapped, when the entry is there and checks out (`hashed`: just written
    and hashed as it was written); else None."""
    ids_path, meta_path = _files(data, vocab)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("vocab") != vocab or meta.get("length") != len(data.ids):
            return None
        if not hashed and file_sha256(ids_path) != meta.get("npy_sha256"):
            return None
        ids = np.load(ids_path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, TypeError, AttributeError, UnicodeDecodeError):
        return None  # not there yet, or damaged: written again
    ok = ids.ndim == 1 and len(ids) == len(data.ids) and ids.dtype == smallest_dtype(len(vocab))
    return ids if ok else None


def _write(
    data: Encoded, vocab: str, table: np.ndarray, progress: Callable | None
) -> np.ndarray | None:
    """Move the ids a piece at a time into the cache entry; None if it cannot be written."""
    ids_path, meta_path = _files(data, vocab)
    digest, step = hashlib.sha256(), CHUNK // data.ids.itemsize
    head = npy_header(table.dtype, len(data.ids))
    try:
        with paths.atomic_writer(ids_path) as fh:
            fh.write(head)
            digest.update(head)
            if progress is not None:
                progress(0, len(data.ids))
            for start in range(0, len(data.ids), step):
                part = data.ids[start : start + step]
                moved = memoryview(table[part]).cast("B")
                fh.write(moved)
                digest.update(moved)
                release(part)
                if progress is not None:
                    progress(start + len(part), len(data.ids))  # characters, as encoding
        meta = {"vocab": vocab, "length": len(data.ids), "npy_sha256": digest.hexdigest()}
        paths.atomic_write_text(meta_path, json.dumps(meta))
    except (OSError, WriteError) as exc:  # a full disk: one line; read-only: in memory
        unwritable(exc, ids_path, len(data.ids) * table.dtype.itemsize)
        return None
    return _cached(data, vocab, hashed=True)
