"""The previous approach to a corpus, kept to measure against (benchmarks/scale.py): the whole
file read into memory, decoded whole into UTF-32 chunks, its ids held whole, and the training
streams copied to int64 (8 bytes a character); every evaluation scored the whole held-out tail.
"""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path

import numpy as np

from charrnn_cli.data import batches
from charrnn_cli.data.encode import Encoded, smallest_dtype
from charrnn_cli.training.job import check_data

CHUNK = 1 << 22


def _utf8_chunks(data: bytes):
    start = 0
    while start < len(data):
        end = min(start + CHUNK, len(data))
        while end < len(data) and end > start + 4 and data[end] & 0xC0 == 0x80:
            end -= 1
        text = data[start:end].decode("utf-8")
        yield np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        start = end


def encode_bytes(data: bytes) -> tuple[np.ndarray, str]:
    """The previous encoder, as it was: the text in memory, code points counted, then mapped."""
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size and int(raw.max()) < 128:
        present = np.flatnonzero(np.bincount(raw, minlength=128))
        table = np.zeros(128, dtype=smallest_dtype(len(present)))
        table[present] = np.arange(len(present))
        return table[raw], "".join(map(chr, present))
    counts = np.zeros(0x110000, dtype=np.int64)
    for points in _utf8_chunks(data):
        counts[: int(points.max()) + 1] += np.bincount(points)
    present = np.flatnonzero(counts)
    dtype = smallest_dtype(len(present))
    table = np.zeros(int(present[-1]) + 1, dtype)
    table[present] = np.arange(len(present))
    ids = np.empty(int(counts.sum()), dtype)
    pos = 0
    for points in _utf8_chunks(data):
        ids[pos : pos + len(points)] = table[points]
        pos += len(points)
    return ids, "".join(map(chr, present))


def load(path: Path) -> Encoded:
    """The corpus as the previous version loaded it: read whole, hashed, encoded in memory."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    ids, vocab = encode_bytes(data)
    del data
    return Encoded(ids, vocab, digest, np.zeros(len(vocab), np.int64))


def _int64_streams(ids: np.ndarray, batch_size: int, device=batches.CPU) -> batches.Streams:
    per_row = len(ids) // batch_size
    rows = np.ascontiguousarray(ids[: per_row * batch_size]).reshape(batch_size, per_row)
    return batches.Streams(rows.astype(np.int64), device)  # (B, N // B), 8 bytes a character


def install() -> None:
    """Make this process train the previous way: int64 streams, the unigram and the distinct
    check by passes over the ids."""
    batches.streams = _int64_streams
    deal = batches.deal
    batches.deal = lambda *args: deal(*args[:6])  # without the encoding's counts
    train = importlib.import_module(
        "charrnn_cli.training.train"
    )  # charrnn_cli.training.train: the API's
    train.check_data = lambda ids, cfg, world, distinct=None: check_data(ids, cfg, world)
