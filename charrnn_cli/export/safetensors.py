"""The safetensors format, read and written with numpy: no pickle, no torch.load, no library.

A file is an 8-byte little-endian header length N, N bytes of JSON (each tensor's `dtype`,
`shape` and `data_offsets` into the data that follows, and an optional `__metadata__` map of
strings), then the tensors' bytes, little-endian and C-ordered
(https://huggingface.co/docs/safetensors). charrnn writes float32 only; it reads the float and
integer kinds below. Every field of a header is checked before a byte of data is used, so a
damaged file is one CorruptFileError naming it and what is wrong, never a wrong tensor.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from charrnn_cli.errors import CorruptFileError
from charrnn_cli.runs import paths

DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1",
}  # fmt: skip
NAMES = {np.dtype(v): k for k, v in DTYPES.items()}  # numpy's little-endian dtype: its name
MAX_HEADER = 100 << 20  # the reference implementation's limit


def encode(tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> bytes:
    """The file's bytes: the header (padded with spaces to 8 bytes), then each tensor's."""
    header: dict[str, object] = {"__metadata__": dict(metadata)} if metadata else {}
    blobs, offset = [], 0
    for name in sorted(tensors):
        array = np.asarray(tensors[name])
        array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        kind = NAMES.get(array.dtype)
        if kind is None:
            raise ValueError(f"{name}: dtype {array.dtype} is not one safetensors stores")
        blob = array.tobytes()
        header[name] = {"dtype": kind, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(blob)]}  # fmt: skip
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def write(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None):
    """Write the tensors to `path` atomically (paths.atomic_write_bytes)."""
    paths.atomic_write_bytes(path, encode(tensors, metadata))


def read(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tensors (writable copies) and the metadata of a safetensors file, checked."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CorruptFileError(f"{path} is missing") from None
    except OSError as exc:
        raise CorruptFileError(f"{path} cannot be read: {exc.strerror or exc}") from None
    return decode(data, path)


def decode(data: bytes, where: Path | str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tensors and metadata in `data` (a safetensors file's bytes); `where` names it."""

    def damaged(why: str) -> CorruptFileError:
        return CorruptFileError(f"{where} is not a valid safetensors file: {why}")

    if len(data) < 8:
        raise damaged("it is shorter than its 8-byte header length")
    (size,) = struct.unpack("<Q", data[:8])
    if size > min(MAX_HEADER, len(data) - 8):
        raise damaged(f"its header length ({size:,} bytes) runs past the file's end")
    try:
        header = json.loads(data[8 : 8 + size].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise damaged(f"its header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise damaged("its header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise damaged("__metadata__ is not a map of strings")
    body = memoryview(data)[8 + size :]
    tensors, spans = {}, []
    for name, entry in header.items():
        why = _entry_problem(entry, len(body))
        if why is not None:
            raise damaged(f"tensor {name!r}: {why}")
        begin, end = entry["data_offsets"]
        spans.append((begin, end, name))
        array = np.frombuffer(body[begin:end], dtype=DTYPES[entry["dtype"]])
        tensors[name] = array.reshape(entry["shape"]).astype(array.dtype.newbyteorder("="))
    spans.sort()
    for (_, end, a), (begin, _, b) in zip(spans, spans[1:], strict=False):
        if begin < end:
            raise damaged(f"tensors {a!r} and {b!r} overlap")
    return tensors, metadata


def _entry_problem(entry: object, length: int) -> str | None:
    """What is wrong with one tensor's header entry, against `length` bytes of data."""
    if not isinstance(entry, dict) or entry.get("dtype") not in DTYPES:
        return f"dtype is not one of {', '.join(DTYPES)}"
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        return "shape is not a list of sizes"
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(isinstance(o, int) for o in offsets)
        and 0 <= offsets[0] <= offsets[1] <= length
    ):
        return f"data_offsets {offsets} do not lie inside the file's {length:,} bytes of data"
    want = int(np.prod(shape, dtype=np.int64)) * np.dtype(DTYPES[entry["dtype"]]).itemsize
    if offsets[1] - offsets[0] != want:
        return f"its {offsets[1] - offsets[0]:,} bytes do not make shape {shape}"
    return None
