"""An entry of the encoded cache: the ids of a text and what they stand for, where the entry's
files live, and the checks it passes before it is trusted.

An entry is `encoded/<sha256>.npy` (a byte run: `<sha256>.bytes.npy`), the ids in the smallest
unsigned dtype that fits, beside a `.json` with the vocabulary, the count of every id and the
sha256 of the whole `.npy`. It may have been damaged or edited by hand, so `cached` reads the
`.npy` again (about 1 s a GB, never held in memory) and checks the vocabulary's shape; an entry
that does not check out is None, and encode.py encodes the text again.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from charrnn_cli.storage import paths
from charrnn_cli.vocab import BYTES, Kind

CHUNK = 1 << 22  # bytes read at a time: ~5x this in temporaries, whatever the file's size


@dataclass(frozen=True)
class Encoded:
    ids: np.ndarray  # (N,) uint8 / uint16 / uint32 ids; a read-only memory map when cached
    vocab: str  # the sorted distinct characters (a byte run: vocab.BYTES); ids index into it
    sha256: str  # of the file's bytes
    counts: np.ndarray  # (V,) int64 occurrences of each id in the whole text
    kind: Kind = "chars"

    @property
    def distinct(self) -> int:
        """How many ids occur (for `chars`, every one; for `bytes`, those the text uses)."""
        return int(np.count_nonzero(self.counts))


def smallest_dtype(n: int) -> np.dtype:
    for dt in (np.uint8, np.uint16, np.uint32):
        if n <= np.iinfo(dt).max + 1:
            return np.dtype(dt)
    raise ValueError(n)


def npy_header(dtype: np.dtype, length: int) -> bytes:
    """The `.npy` header of `length` ids of `dtype`: the ids' bytes follow it as written."""
    head = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False}
    np.lib.format.write_array_header_1_0(head, {**header, "shape": (length,)})
    return head.getvalue()


def cache_files(digest: str, kind: Kind) -> tuple[Path, Path]:
    stem = digest if kind == "chars" else f"{digest}.{kind}"
    folder = paths.cache_dir() / "encoded"
    return folder / f"{stem}.npy", folder / f"{stem}.json"


def cached(digest: str, kind: Kind, hashed: bool = False) -> Encoded | None:
    """The cached encoding, mapped read-only, if it is there and every part of it checks out:
    a vocabulary of sorted distinct characters (a byte run: all 256), a count per id adding up
    to the length, and a `.npy` of that many unsigned ids whose bytes hash as recorded
    (`hashed`: this process has just written it and hashed what it wrote)."""
    ids_path, meta_path = cache_files(digest, kind)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        vocab, length, npy_sha256 = meta["vocab"], meta["length"], meta["npy_sha256"]
        if meta.get("kind") != kind or not _good_vocab(vocab, kind):
            return None
        if not isinstance(length, int) or not isinstance(npy_sha256, str):
            return None
        counts = np.asarray(meta["counts"], dtype=np.int64)
        dtype = smallest_dtype(len(vocab))
        if counts.shape != (len(vocab),) or counts.min() < 0 or counts.sum() != length:
            return None
        if kind == "chars" and counts.min() == 0:  # each character of the vocabulary occurs
            return None
        if not hashed and file_sha256(ids_path) != npy_sha256:
            return None
        ids = np.load(ids_path, mmap_mode="r", allow_pickle=False) if length else None
        ids = np.zeros(0, dtype) if ids is None else ids  # an empty file cannot be mapped
    except (OSError, ValueError, KeyError, TypeError, OverflowError, UnicodeDecodeError):
        return None  # not cached yet, or a damaged entry: encode again
    if ids.ndim != 1 or len(ids) != length or ids.dtype != dtype:
        return None
    return Encoded(ids, vocab, digest, counts, kind)


def _good_vocab(vocab: object, kind: Kind) -> bool:
    if kind == "bytes":
        return vocab == BYTES
    return isinstance(vocab, str) and bool(vocab) and list(vocab) == sorted(set(vocab))


def file_sha256(path: Path) -> str:
    """Read in pieces with plain reads: the page cache keeps them, this process does not."""
    digest, buf = hashlib.sha256(), bytearray(CHUNK)
    with open(path, "rb") as fh:
        while n := fh.readinto(buf):
            digest.update(memoryview(buf)[:n])
    return digest.hexdigest()
