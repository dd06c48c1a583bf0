"""What counts as text for charrnn: UTF-8, checked as it streams, a bad byte named by offset.

One decoder, one rule and one message for every way text comes in: an argument (`sample
--seed`, `viz --text`), stdin (`-`), a file or a corpus name (`eval --corpus`, `viz --corpus`,
`sample --seed -`), a download, an import, a corpus being encoded for training. Bytes that are
not UTF-8 are a `CorruptFileError` (exit 4) naming where they came from and the byte offset of
the first bad byte. Text is read as bytes and decoded here, never in Python's text mode, so a
carriage return stays one (CRLF text scores the same in `eval`, `viz` and training).
`Utf8Stream` decodes chunk by chunk, so a character split between chunks is fine; `TextSink`
also writes, hashes and refuses NUL bytes and empty corpora.
"""

from __future__ import annotations

import codecs
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from charrnn_cli.errors import CorruptFileError
from charrnn_cli.storage import paths


def not_utf8(label: str | Path, offset: int) -> CorruptFileError:
    """The one error for bytes that are not UTF-8 text."""
    return CorruptFileError(
        f"{label} is not UTF-8 text at byte {offset} "
        "(convert it first, e.g. with `iconv -f latin1 -t utf-8`)"
    )


class Utf8Stream:
    """Strict incremental UTF-8 decoding that counts bytes, so an error names the offset of
    the bad byte in the whole stream (not in the chunk)."""

    def __init__(self, label: str | Path) -> None:
        self.label = label
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self.size = 0  # bytes fed so far

    def decode(self, chunk: bytes, final: bool = False) -> str:
        pending = len(self.decoder.getstate()[0])  # bytes of a character begun in the last chunk
        try:
            text = self.decoder.decode(chunk, final=final)
        except UnicodeDecodeError as exc:
            raise not_utf8(self.label, self.size - pending + exc.start) from None
        self.size += len(chunk)
        return text


def read_blocks(stream: IO[bytes], label: str | Path, size: int) -> Iterator[str]:
    """The text of a byte stream in blocks of at most `size` characters, UTF-8 checked."""
    utf8 = Utf8Stream(label)
    while chunk := stream.read(size):
        if text := utf8.decode(chunk):
            yield text
    if text := utf8.decode(b"", final=True):
        yield text


def argument(value: str, where: str) -> str:
    """Text given as a command-line argument (`where`: "--text"). Python keeps argv bytes that
    are not UTF-8 as lone surrogates; they are the one error, with the byte offset."""
    if not any("\udc80" <= c <= "\udcff" for c in value):
        return value
    return decode(os.fsencode(value), where)


def decode(data: bytes, where: str | Path) -> str:
    """Bytes held whole (an argument, a small stdin) as text: the one decoder and error."""
    return Utf8Stream(where).decode(data, final=True)


class TextSink:
    """Writes a corpus chunk by chunk while hashing it and checking that it is UTF-8 text.

    `label` names the source in errors; `fh` None only checks and hashes. `reset()` starts over
    (the file is truncated), so a restarted download never appends twice.
    """

    def __init__(self, fh: IO[bytes] | None, label: str, dest: Path | None = None) -> None:
        self.fh = fh
        self.label = label
        self.dest = dest  # the file being made, named when the disk refuses a write
        self.reset()

    def reset(self) -> None:
        if self.fh is not None:
            self.fh.seek(0)
            self.fh.truncate()
        self.hasher = hashlib.sha256()
        self.utf8 = Utf8Stream(self.label)

    @property
    def size(self) -> int:
        return self.utf8.size

    def write(self, chunk: bytes) -> None:
        nul = chunk.find(b"\x00")
        if nul >= 0:
            raise CorruptFileError(
                f"{self.label} is not text: NUL byte at byte {self.size + nul} (a binary file?)"
            )
        self.utf8.decode(chunk)
        if self.fh is not None:
            try:
                self.fh.write(chunk)
            except OSError as exc:  # the disk, not the network: never retried as a cut-off body
                raise paths.write_error(self.dest or getattr(self.fh, "name", None), exc) from None
        self.hasher.update(chunk)

    def finish(self) -> tuple[str, int]:
        """Check the end of the text; return (sha256 hex, size)."""
        self.utf8.decode(b"", final=True)
        if self.size == 0:
            raise CorruptFileError(f"{self.label} is empty: nothing to train on")
        return self.hasher.hexdigest(), self.size
