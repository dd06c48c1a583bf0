"""Turning a corpus into integer ids, in chunks, into a cache that training maps from disk.

The vocabulary of a `chars` run is the sorted distinct characters of the text; a `bytes` run
reads the 256 byte values (see vocab.py). Encoding streams the file twice in chunks of a few
MB and never holds the text: the first pass hashes it, checks it is UTF-8 and counts its
characters (utf8scan.py); the second maps bytes to ids with `bytes.translate` (the rare
multi-byte characters set apart) and writes them straight into the cache, in the smallest
unsigned dtype that fits (uint8 for up to 256 characters): `encoded/<sha256>.npy` (a byte run:
`<sha256>.bytes.npy`) beside a `.json` with the vocabulary and the count of every id. `load`
returns the ids as a read-only memory map, so a second run starts at once and a run's memory
does not grow with its corpus. A file that changes while it is encoded (its sha256 differs
between the passes, or from the one the caller checked) is refused and nothing is cached.
The cache is checked before it is trusted (encoded.py): an entry that does not check out is
encoded again, never trained on.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from charrnn_cli.data import utf8scan
from charrnn_cli.data.encoded import CHUNK, Encoded, npy_header, smallest_dtype
from charrnn_cli.data.encoded import cache_files as _cache_files
from charrnn_cli.data.encoded import cached as _cached
from charrnn_cli.errors import CharrnnError, WriteError
from charrnn_cli.storage import locks, paths
from charrnn_cli.vocab import BYTES, Kind

Progress = Callable[[int, "int | None"], None]  # (bytes done, bytes in all)
LOCK_WAIT_S = 900.0  # how long a process waits for another encoding the same text


@dataclass
class _Plan:
    """What the first pass learned: enough to write the ids in the second."""

    sha256: str
    length: int  # characters (ids) in all
    vocab: str
    counts: np.ndarray  # (V,) int64

    @property
    def dtype(self) -> np.dtype:
        return smallest_dtype(len(self.vocab))


def _changed(label: str) -> CharrnnError:
    return CharrnnError(
        f"{label} changed while it was being encoded (its sha256 differs from when it was "
        "read): nothing was cached; try again once nothing writes to it"
    )


def _vocab_pass(fh: IO[bytes], label: str, kind: Kind, step: Progress) -> _Plan:
    """Hash, check and count the text: its vocabulary and the count of each character."""
    digest, byte_counts, wide, length = hashlib.sha256(), np.zeros(256, np.int64), {}, 0
    for offset, data in utf8scan.chunks(fh, CHUNK):
        digest.update(data)
        byte_counts += utf8scan.count_bytes(data)
        if kind == "chars":
            found = utf8scan.scan(data, offset, label)
            length += found.chars
            for point, n in zip(*np.unique(found.points, return_counts=True), strict=True):
                wide[int(point)] = wide.get(int(point), 0) + int(n)
        else:
            length += len(data)
        step(len(data), None)
    if kind == "bytes":
        return _Plan(digest.hexdigest(), length, BYTES, byte_counts)
    ascii_ = np.flatnonzero(byte_counts[:128])
    points = sorted(wide)
    counts = np.concatenate([byte_counts[ascii_], np.array([wide[p] for p in points], np.int64)])
    vocab = "".join(map(chr, ascii_)) + "".join(map(chr, points))
    return _Plan(digest.hexdigest(), length, vocab, counts)


def _ids_pass(
    fh: IO[bytes], label: str, kind: Kind, plan: _Plan, out: Callable, step: Progress
) -> str:
    """Write the ids of the text to `out` chunk by chunk; return the sha256 of what was read."""
    digest = hashlib.sha256()
    table = bytearray(256)  # ASCII to its id; a multi-byte character's first byte set below
    n_ascii = sum(1 for c in plan.vocab if ord(c) < 128)
    for i, c in enumerate(plan.vocab[:n_ascii]):
        table[ord(c)] = i
    wide = np.array([ord(c) for c in plan.vocab[n_ascii:]], dtype=np.uint32)
    for offset, data in utf8scan.chunks(fh, CHUNK):
        digest.update(data)
        if kind == "bytes":
            out(np.frombuffer(data, dtype=np.uint8))
            step(len(data), None)
            continue
        found = utf8scan.scan(data, offset, label)
        narrow = np.frombuffer(data.translate(table, utf8scan.CONTINUATION), dtype=np.uint8)
        ids = narrow.astype(plan.dtype) if plan.dtype != narrow.dtype else narrow
        if found.lead.size:
            ids = ids if ids is not narrow else narrow.copy()
            ids[found.char_positions()] = n_ascii + np.searchsorted(wide, found.points)
        out(ids)
        step(len(data), None)
    return digest.hexdigest()


class _Sink:
    """Where the second pass puts the ids: after an .npy header in a file, or in memory."""

    def __init__(self, plan: _Plan, label: str, fh: IO[bytes] | None = None) -> None:
        self.plan, self.label, self.fh, self.written = plan, label, fh, 0
        self.held = np.empty(plan.length, plan.dtype) if fh is None else None
        self.file_sha256 = hashlib.sha256()  # of every byte of the .npy, header included
        if fh is not None:
            self._write(npy_header(plan.dtype, plan.length))

    def _write(self, data: bytes | memoryview) -> None:
        assert self.fh is not None
        self.fh.write(data)
        self.file_sha256.update(data)

    def __call__(self, ids: np.ndarray) -> None:
        end = self.written + len(ids)
        if end > self.plan.length:  # more characters than the first pass counted
            raise _changed(self.label)
        if self.held is not None:
            self.held[self.written : end] = ids
        elif self.fh is not None:
            self._write(memoryview(np.ascontiguousarray(ids)).cast("B"))
        self.written = end

    def fill(self, read: Callable[[], IO[bytes]], kind: Kind, step: Progress) -> None:
        """Run the second pass over the text `read()` opens; refuse text that changed."""
        with read() as src:
            digest = _ids_pass(src, self.label, kind, self.plan, self, step)
        if digest != self.plan.sha256 or self.written != self.plan.length:
            raise _changed(self.label)


def load(
    path: Path,
    sha256: str | None = None,
    kind: Kind = "chars",
    progress: Progress | None = None,
) -> Encoded:
    """The ids of the corpus at `path` (whose sha256 the caller may have checked), from the
    cache when this text was encoded before. `progress(done, total)` hears about the bytes."""
    if sha256 is not None and (hit := _cached(sha256, kind)) is not None:
        return hit
    folder = paths.cache_dir() / "encoded"
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
    paths.sweep_stale_temps(folder)  # an encoding killed before (SIGKILL, OOM, hang-up)
    lock = folder / f"{sha256}.lock" if sha256 else None
    with (
        locks.file_lock(lock, wait=LOCK_WAIT_S, best_effort=True)
        if lock
        else contextlib.nullcontext()
    ):
        if sha256 is not None and (hit := _cached(sha256, kind)) is not None:
            return hit  # another process encoded it while this one waited
        return _encode(path, sha256, kind, progress)


def _encode(path: Path, sha256: str | None, kind: Kind, progress: Progress | None) -> Encoded:
    label, done = str(path), 0
    size = path.stat().st_size

    def step(n: int, _: int | None) -> None:  # two passes: report the file's bytes, encoded
        nonlocal done
        done += n
        if progress is not None:
            progress(done // 2, size)

    with open(path, "rb") as fh:
        plan = _vocab_pass(fh, label, kind, step)
    if sha256 is not None and plan.sha256 != sha256:
        raise _changed(label)
    if (hit := _cached(plan.sha256, kind)) is not None:
        return hit
    ids_path, meta_path = _cache_files(plan.sha256, kind)
    try:
        with paths.atomic_writer(ids_path) as fh:
            sink = _Sink(plan, label, fh)
            sink.fill(lambda: open(path, "rb"), kind, step)
        meta = {"kind": kind, "vocab": plan.vocab, "length": plan.length}
        meta["npy_sha256"] = sink.file_sha256.hexdigest()
        paths.atomic_write_text(meta_path, json.dumps({**meta, "counts": plan.counts.tolist()}))
    except (OSError, WriteError) as exc:  # a read-only cache: the ids are held in memory
        unwritable(exc, ids_path, plan.length * plan.dtype.itemsize)
        held = _Sink(plan, label)
        held.fill(lambda: open(path, "rb"), kind, step)
        return Encoded(held.held, plan.vocab, plan.sha256, plan.counts, kind)
    hit = _cached(plan.sha256, kind, hashed=True)
    if hit is None:
        raise CharrnnError(f"the encoding of {label} could not be read back from {ids_path}")
    return hit


def unwritable(exc: OSError | WriteError, path: Path, need: int) -> None:
    """A cache entry of `need` bytes that could not be written: a full disk is the user's to
    fix (a WriteError, one line: holding a 10 GB corpus's ids in memory instead would end in
    an OOM kill that blames the model); a folder that may not be written (read-only, no
    permission) is said on stderr, and the caller holds the ids, no more, in memory."""
    if paths.is_disk_full(exc):
        if isinstance(exc, OSError):
            exc = paths.write_error(path, exc)
        raise WriteError(f"{exc} (the encoding needs {need / 1e6:,.0f} MB)") from None
    from charrnn_cli import console

    why = exc.strerror if isinstance(exc, OSError) else str(exc)
    console.warn(f"cannot cache the encoding in {path.parent} ({why}): the ids are held in "
                 f"memory ({need / 1e6:,.0f} MB) and encoded again next time")  # fmt: skip


def encode_bytes(data: bytes, label: str = "the corpus") -> tuple[np.ndarray, str]:
    """Ids and vocabulary of UTF-8 `data` held in memory (the same two passes as `load`);
    CorruptFileError (naming `label`, the file) if it is not UTF-8 text."""
    quiet: Progress = lambda n, t: None  # noqa: E731
    plan = _vocab_pass(io.BytesIO(data), label, "chars", quiet)
    sink = _Sink(plan, label)
    sink.fill(lambda: io.BytesIO(data), "chars", quiet)
    return sink.held, plan.vocab


def encode_text(text: str, vocab: str) -> tuple[np.ndarray, int]:
    """Ids of `text` under an existing vocabulary; characters outside it are dropped.

    Returns the ids and how many characters were dropped.
    """
    points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    cps = np.frombuffer(vocab.encode("utf-32-le"), dtype=np.uint32)
    size = int(max(points.max(initial=0), cps.max(initial=0))) + 1
    table = np.full(size, -1, dtype=np.int64)
    table[cps] = np.arange(len(cps))
    ids = table[points]
    keep = ids >= 0
    return ids[keep].astype(smallest_dtype(len(vocab))), int((~keep).sum())


def unknown_chars(text: str, vocab: str) -> list[str]:
    """The distinct characters of `text` that are not in `vocab`, in order of appearance."""
    known = set(vocab)
    return list(dict.fromkeys(c for c in text if c not in known))
