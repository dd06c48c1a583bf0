"""Turning a corpus into integer ids: the vocabulary, vectorised encoding, and its cache.

The vocabulary is the sorted distinct characters of the text. Encoding never loops in Python:
ASCII text is viewed as bytes and mapped through a 128-entry table; other text is viewed as
UTF-32 code points and mapped through a table over the code points present. The ids take the
smallest unsigned dtype that fits (uint8 for up to 256 characters). The result is cached beside
the corpora keyed by the text's sha256 (`encoded/<sha256>.npy` and `.json`, which also records
the ids' own sha256, so an entry damaged by hand is encoded again rather than trained on), so a
second run starts at once. Peak memory stays a small multiple of the file size.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from charrnn_cli import paths
from charrnn_cli.errors import WriteError
from charrnn_cli.text import not_utf8


@dataclass(frozen=True)
class Encoded:
    ids: np.ndarray  # (N,) uint8 / uint16 / uint32 character ids
    vocab: str  # the sorted distinct characters; ids index into it
    sha256: str  # of the UTF-8 text


def smallest_dtype(n: int) -> np.dtype:
    for dt in (np.uint8, np.uint16, np.uint32):
        if n <= np.iinfo(dt).max + 1:
            return np.dtype(dt)
    raise ValueError(n)


CHUNK = 1 << 22  # bytes of UTF-8 decoded at a time: bounds the temporaries of non-ASCII text


def _utf8_chunks(data: bytes, label: str, size: int = CHUNK):
    """Code points of `data` in chunks cut at character boundaries (strict UTF-8; bytes that
    are not UTF-8 are a CorruptFileError naming `label` and the offset)."""
    start = 0
    while start < len(data):
        end = min(start + size, len(data))
        while end < len(data) and end > start + 4 and data[end] & 0xC0 == 0x80:
            end -= 1  # back to the start of a character (a run of stray bytes fails to decode)
        try:
            text = data[start:end].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise not_utf8(label, start + exc.start) from None
        yield np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        start = end


def encode_bytes(data: bytes, label: str = "the corpus") -> tuple[np.ndarray, str]:
    """Ids and vocabulary for UTF-8 `data`; CorruptFileError (naming `label`, the file) if it
    is not UTF-8 text."""
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size and int(raw.max()) < 128:  # ASCII: one byte per character
        present = np.flatnonzero(np.bincount(raw, minlength=128))
        table = np.zeros(128, dtype=smallest_dtype(len(present)))
        table[present] = np.arange(len(present))
        return table[raw], "".join(map(chr, present))
    # two passes over chunks: count the code points, then map them, so memory stays about
    # the file plus the ids plus one chunk's temporaries
    counts = np.zeros(0x110000, dtype=np.int64)
    for points in _utf8_chunks(data, label):
        counts[: int(points.max()) + 1] += np.bincount(points)
    present = np.flatnonzero(counts)
    dtype = smallest_dtype(len(present))
    table = np.zeros(int(present[-1]) + 1 if present.size else 1, dtype)
    table[present] = np.arange(len(present))
    ids = np.empty(int(counts.sum()), dtype)
    pos = 0
    for points in _utf8_chunks(data, label):
        ids[pos : pos + len(points)] = table[points]
        pos += len(points)
    return ids, "".join(map(chr, present))


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


def load(path: Path, sha256: str | None = None) -> Encoded:
    """Encode the corpus at `path`, from the cache when this text was encoded before."""
    data = path.read_bytes()
    digest = sha256 or hashlib.sha256(data).hexdigest()
    folder = paths.cache_dir() / "encoded"
    ids_path, meta_path = folder / f"{digest}.npy", folder / f"{digest}.json"
    cached = _cached(ids_path, meta_path)
    if cached is not None:
        return Encoded(cached[0], cached[1], digest)
    ids, vocab = encode_bytes(data, str(path))
    del data
    try:
        with paths.atomic_writer(ids_path) as fh:
            np.save(fh, ids, allow_pickle=False)
        meta = {"vocab": vocab, "length": int(ids.size), "ids_sha256": _ids_sha256(ids)}
        paths.atomic_write_text(meta_path, json.dumps(meta))
    except (OSError, WriteError):
        pass  # a read-only cache only costs the next run the encoding time
    return Encoded(ids, vocab, digest)


def _cached(ids_path: Path, meta_path: Path) -> tuple[np.ndarray, str] | None:
    """The ids and vocabulary cached for a text, when every part of the entry checks out (it
    may have been damaged or edited by hand): a vocabulary of sorted distinct characters, ids
    of an unsigned type, as many as recorded and hashing as recorded. None: encode again."""
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        vocab, length, digest = meta["vocab"], meta["length"], meta["ids_sha256"]
        if not isinstance(vocab, str) or not vocab or list(vocab) != sorted(set(vocab)):
            return None
        if not isinstance(length, int) or not isinstance(digest, str):
            return None
        mapped = np.load(ids_path, mmap_mode="r", allow_pickle=False)  # the header, checked
        if mapped.ndim != 1 or mapped.dtype.kind != "u" or mapped.size != length:
            return None
        ids = np.array(mapped)
        del mapped
        if not ids.size or int(ids.max()) >= len(vocab) or _ids_sha256(ids) != digest:
            return None
        return ids, vocab
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None  # not cached yet, or a damaged cache entry


def _ids_sha256(ids: np.ndarray) -> str:
    return hashlib.sha256(memoryview(np.ascontiguousarray(ids)).cast("B")).hexdigest()
