"""UTF-8 text as character ids without decoding it whole: ASCII bytes as they are, the rare
multi-byte characters found and decoded apart.

Corpora are mostly ASCII (0.02% of the bytes of Python's sources are not). `scan` finds the
bytes >= 0x80 of a chunk, checks and decodes only those (strict UTF-8; a bad byte is named by
its offset in the file) and returns where each multi-byte character starts and its code point.
Counting characters and turning bytes into ids are then C loops over the bytes
(`np.bincount`, `bytes.translate`), never a Python loop or a UTF-32 copy of the text. `chunks`
reads a file in pieces cut between characters.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

import numpy as np

from charrnn_cli.text import not_utf8

CONTINUATION = bytes(range(0x80, 0xC0))  # the bytes that never start a character
COUNT_STEP = 1 << 20  # bytes counted at a time: np.bincount widens them to 8-byte integers


@dataclass
class Scan:
    """One chunk of UTF-8 text, checked, with its multi-byte characters located."""

    data: bytes
    cont: np.ndarray  # (k,) positions of the continuation bytes, ascending
    lead: np.ndarray  # (m,) positions of the first byte of each multi-byte character
    points: np.ndarray  # (m,) uint32 code point of each multi-byte character

    @property
    def chars(self) -> int:
        return len(self.data) - len(self.cont)

    def char_positions(self) -> np.ndarray:
        """(m,) where each multi-byte character falls among the chunk's characters."""
        return self.lead - np.searchsorted(self.cont, self.lead)


def scan(data: bytes, offset: int, label: str) -> Scan:
    """Check `data` (whole characters; it starts `offset` bytes into the file `label`) and
    locate its multi-byte characters; CorruptFileError at the first byte that is not UTF-8."""
    raw = np.frombuffer(data, dtype=np.uint8)
    high = np.flatnonzero(raw >= 0x80)  # (k + m,)
    if not high.size:
        empty = np.zeros(0, dtype=np.int64)
        return Scan(data, empty, empty, np.zeros(0, dtype=np.uint32))
    values = raw[high]
    # ASCII never belongs to a multi-byte character, so the text is UTF-8 exactly when each
    # run of adjacent high bytes is: decode the runs alone, a newline keeping them apart
    breaks = np.flatnonzero(np.diff(high) != 1) + 1
    runs = np.insert(values, breaks, 0x0A)
    where = np.insert(high, breaks, -1)
    try:
        text = runs.tobytes().decode("utf-8")
    except UnicodeDecodeError as exc:  # exc.start is a high byte, never a newline
        raise not_utf8(label, offset + int(where[exc.start])) from None
    points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    is_lead = values >= 0xC0
    return Scan(data, high[~is_lead], high[is_lead], points[points != 0x0A])


def count_bytes(data: bytes) -> np.ndarray:
    """(256,) int64 occurrences of each byte value."""
    raw = np.frombuffer(data, dtype=np.uint8)
    counts = np.zeros(256, dtype=np.int64)
    for start in range(0, len(raw), COUNT_STEP):
        counts += np.bincount(raw[start : start + COUNT_STEP], minlength=256)
    return counts


def chunks(fh: IO[bytes], size: int) -> Iterator[tuple[int, bytes]]:
    """(offset, bytes) pieces of about `size` bytes, each ending at the end of a character
    (a character cut by the end of the file is left whole for `scan` to refuse). After each
    piece the memory its work freed is handed back to the system (see `_trim`)."""
    offset, carry = 0, b""
    while block := fh.read(size):
        data = carry + block
        cut = _last_start(data)
        if cut < len(data) and len(data) - cut < _length(data[cut]):
            data, carry = data[:cut], data[cut:]
        else:
            carry = b""
        if data:
            yield offset, data
            offset += len(data)
            del data, block
            _trim()
    if carry:
        yield offset, carry


def _libc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError, TypeError):  # not glibc: its allocator behaves otherwise
        return None


_MALLOC_TRIM = _libc_trim()


def _trim() -> None:
    """glibc keeps freed heap memory for reuse, and the few-MB buffers of each piece, of
    slightly different sizes, fragment it: encoding 1 GB in 4 MB pieces grew the process by
    450 MB. `malloc_trim` returns the free pages at once (a no-op elsewhere)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _last_start(data: bytes) -> int:
    """Where the last multi-byte character of `data` may begin (among its last 3 bytes)."""
    for back in range(1, min(4, len(data)) + 1):
        if data[-back] >= 0xC0:
            return len(data) - back
    return len(data)


def _length(lead: int) -> int:
    return 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
