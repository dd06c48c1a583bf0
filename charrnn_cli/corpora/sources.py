"""Text named on the command line: `-` (stdin), a file, or a cached corpus name, read as bytes.

`eval --corpus`, `viz --corpus` and `sample --seed -` take such a spec. A name that is not a
file is looked up in the corpus cache, so this sits over the cache; the decoding itself (one
rule and one message for bytes that are not UTF-8) is `text.py`'s.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import IO

from charrnn_cli.storage import paths
from charrnn_cli.text import read_blocks


@contextlib.contextmanager
def open_source(spec: str) -> Iterator[tuple[IO[bytes], str]]:
    """The bytes of `-` (stdin), a file (or a pipe or device named as one) or a cached corpus
    name, and the label errors name it by."""
    if spec == "-":
        stdin = getattr(sys.stdin, "buffer", None)
        if stdin is None:  # a stdin replaced by text (an embedding program): its bytes back
            import io

            stdin = io.BytesIO(sys.stdin.read().encode("utf-8", "surrogateescape"))
        yield stdin, "stdin"
        return
    path = paths.user_path(spec)
    if not path.exists() or path.is_dir():  # a name
        from charrnn_cli.corpora.resolving import resolve

        path = resolve(spec).path
    with open(path, "rb") as fh:
        yield fh, str(path)


def blocks(spec: str, size: int) -> Iterator[str]:
    """The text of `spec` (see `open_source`) in blocks of at most `size` characters."""
    with open_source(spec) as (fh, label):
        yield from read_blocks(fh, label, size)


def read_start(spec: str, limit: int) -> tuple[str, bool]:
    """The first `limit` characters of `spec` and whether there were more; the bytes after
    them are not read (nor checked)."""
    got: list[str] = []
    held = 0
    for block in blocks(spec, min(max(limit, 1), 1 << 20) + 1):
        got.append(block)
        held += len(block)
        if held > limit:
            break
    text = "".join(got)
    return text[:limit], len(text) > limit
