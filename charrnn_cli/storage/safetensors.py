"""The safetensors format, read and written with the reference `safetensors` library.

A file is an 8-byte header length, a JSON header (each tensor's `dtype`, `shape` and
`data_offsets`, and an optional `__metadata__` map of strings), then the tensors' bytes
(https://huggingface.co/docs/safetensors). The library's Rust parser checks the header: its
length against the file, its JSON (a depth limit, numbers in range), each dtype, each shape's
element count against its offsets (overflow-checked), and that the tensors tile the data exactly.
On top of it charrnn checks what it expects: `read`'s `check` sees every tensor's name, dtype
and shape before a byte of data is copied, so a header the library accepts but the model cannot
use (100 dimensions, a huge shape) is refused before anything is allocated for it; the tensors
read then hold at most the file's bytes. Every failure is one CorruptFileError naming the file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import numpy as np

from charrnn_cli.errors import CorruptFileError
from charrnn_cli.storage import paths

# a tensor's (dtype as the header names it: F32, F16, I64...; shape)
Layout = dict[str, tuple[str, tuple[int, ...]]]
_PREFIX = "Error while deserializing header: "


def encode(tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> bytes:
    """The file's bytes, as the library writes them."""
    from safetensors.numpy import save

    arrays = {name: np.ascontiguousarray(array) for name, array in tensors.items()}
    try:
        return save(arrays, metadata=metadata)
    except Exception as exc:  # a dtype the format has no name for, a non-string metadata value
        raise ValueError(f"safetensors cannot store these tensors: {exc}") from None


def write(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None):
    """Write the tensors to `path` atomically (paths.atomic_write_bytes)."""
    paths.atomic_write_bytes(path, encode(tensors, metadata))


def read(
    path: Path, check: Callable[[Layout], None] | None = None
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tensors (writable arrays) and the metadata of a safetensors file. `check` sees the
    layout (name: (dtype, shape)) before any tensor is read, and raises CorruptFileError to
    refuse it; any fault of the file is a CorruptFileError naming it."""
    from safetensors import safe_open

    _regular_file(path)
    try:
        with safe_open(str(path), framework="numpy") as fh:
            metadata = fh.metadata() or {}
            layout: Layout = {}
            for name in fh.keys():
                piece = fh.get_slice(name)
                layout[name] = (str(piece.get_dtype()), tuple(piece.get_shape()))
            if check is not None:
                check(layout)
            tensors = {name: _writable(fh.get_tensor(name)) for name in layout}
    except CorruptFileError:
        raise
    except Exception as exc:  # SafetensorError, a dtype numpy lacks (BF16), an OS error...
        raise damaged(path, _reason(exc)) from None
    return tensors, dict(metadata)


def _writable(array: np.ndarray) -> np.ndarray:
    return array if array.flags.writeable else array.copy()


def damaged(path: Path | str, why: str) -> CorruptFileError:
    return CorruptFileError(f"{path} is not a valid safetensors file: {why}")


def _reason(exc: Exception) -> str:
    """The library's message in one short line, without its common prefix."""
    text = " ".join(str(exc).split()).removeprefix(_PREFIX) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _regular_file(path: Path) -> None:
    """Refuse a missing file, or one that is not a regular file (a FIFO would block, a device
    never end), before the library opens it."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise CorruptFileError(f"{path} is missing") from None
    except (OSError, ValueError) as exc:
        raise CorruptFileError(f"{path} cannot be read: {getattr(exc, 'strerror', exc)}") from None
    if not stat.S_ISREG(mode):
        raise CorruptFileError(f"{path} is not a regular file")
