"""The two vocabularies a model can read: characters (code points) or UTF-8 bytes.

`chars` (the default) gives each distinct character of the corpus an id, in code point order.
`bytes` gives the model the 256 byte values of the UTF-8 text, the way enwik8 results are
reported (bits per byte): the output layer stays 256 wide however many rare characters a text
has. A byte run's vocabulary string is `BYTES` (the 256 characters U+0000..U+00FF, one per byte
value), so everything that maps ids to characters and back works unchanged; `Utf8Bytes` turns
those byte characters into text as they are sampled, holding back a character until its last
byte arrives and replacing invalid sequences with U+FFFD (counted).

Torch- and numpy-free: the sampler and `charrnn eval` call it on what they already have.
"""

from __future__ import annotations

import codecs
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from charrnn_cli.config import Vocab as Kind

if TYPE_CHECKING:
    import numpy as np

BYTES = "".join(map(chr, range(256)))  # a byte run's vocabulary: id b is chr(b)
REPLACEMENT = "\ufffd"


def seed_ids(text: str, kind: Kind, vocab: str) -> list[int]:
    """The ids of a seed text (its characters must be in `vocab` for a `chars` run)."""
    if kind == "bytes":
        return list(text.encode("utf-8"))
    index = {c: i for i, c in enumerate(vocab)}
    return [index[c] for c in text]


class _Replaced(threading.local):
    count = 0  # invalid sequences replaced in this thread since the last feed began


_REPLACED = _Replaced()


def _replace_and_count(exc: UnicodeError) -> tuple[str, int]:
    """Python's "replace" (one U+FFFD a maximal invalid sequence), counted."""
    assert isinstance(exc, UnicodeDecodeError)
    _REPLACED.count += 1
    return REPLACEMENT, exc.end


codecs.register_error("charrnn-count-replace", _replace_and_count)


class Utf8Bytes:
    """Incremental UTF-8 decoding of sampled bytes (each given as the character chr(byte)).

    `feed` returns the text that is complete so far; a character whose bytes have not all
    arrived waits for the next call. An invalid sequence becomes one U+FFFD (as Python's
    "replace" does) and is counted in `replaced`; `finish` flushes a cut-off character the
    same way. One pass over the bytes, however many sequences are invalid (an incremental
    decoder with a counting error handler, never the rest of the text copied at each one).
    """

    def __init__(self) -> None:
        self.decoder = codecs.getincrementaldecoder("utf-8")("charrnn-count-replace")
        self.replaced = 0

    def feed(self, chars: str, final: bool = False) -> str:
        _REPLACED.count = 0
        text = self.decoder.decode(chars.encode("latin-1"), final)
        self.replaced += _REPLACED.count
        return text

    def finish(self) -> str:
        """The rest, at the end of a sample: a cut-off character becomes U+FFFD."""
        return self.feed("", final=True)


def readable(pieces: Iterable[str], decoder: Utf8Bytes | None) -> Iterator[str]:
    """The text of what a sampler yields: as it is for a `chars` run (no decoder); for a
    `bytes` run, decoded as it comes, never a broken character."""
    if decoder is None:
        yield from pieces
        return
    for piece in pieces:
        if text := decoder.feed(piece):
            yield text
    if text := decoder.finish():
        yield text


def characters_in(byte_ids: np.ndarray) -> int:
    """How many characters UTF-8 bytes hold: every byte but the continuation bytes
    (0b10xxxxxx), so bits per character of a byte run compare with a `chars` run's."""
    import numpy as np

    total, step = 0, 1 << 22  # a few MB of temporaries at a time, whatever the size
    for row in np.atleast_2d(byte_ids):
        for start in range(0, len(row), step):
            total += int(np.count_nonzero((row[start : start + step] & 0xC0) != 0x80))
    return total
