"""The corpus cache on disk: texts stored by content, names pointing at them.

    corpora/blobs/<sha256>.txt   a text, named by the sha256 of its bytes (never changed)
    corpora/<name>.json          a name: its sha256, size, source, fetched_at, what its source adds
    corpora/encoded/<sha256>.*   the ids of a text, for training (encode.py)

A run refers to its text by sha256, so importing other text under a name it was trained on
moves only the name: the old text stays until `charrnn fetch --gc` finds that no name and no
run refers to it (collecting.py). A name counts only when its text still matches its metadata
(`valid_cached`). New text enters through `store`, which checks it is UTF-8 text while writing
it (`text.TextSink`) through `paths.atomic_file`, so the cache never holds a partial or unchecked
file; fetches of one name by several processes take `lock(name)` first. A cache written before
content addressing (`<name>.txt` beside `<name>.json`) is migrated in place by `migrate`: each
text is moved to its blob, no download needed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from charrnn_cli.corpora.download import Progress
from charrnn_cli.corpora.registry import CorpusFile, looks_like_name
from charrnn_cli.storage import locks, paths
from charrnn_cli.text import TextSink

READ_CHUNK = 1 << 16  # bytes read at a time from a file or stdin being imported
BLOBS = "blobs"
META_MAX_BYTES = 1 << 20  # a name's metadata is a few hundred bytes; more is not ours
SHA_RE = re.compile(r"[0-9a-f]{64}")


def blob_dir() -> Path:
    return paths.cache_dir() / BLOBS


def blob_path(sha256: str) -> Path:
    """Where the text with this sha256 is kept."""
    return blob_dir() / f"{sha256}.txt"


def legacy_text_path(name: str) -> Path:
    """Where a cache from before content addressing kept a name's text."""
    return paths.cache_dir() / f"{name}.txt"


def meta_path(name: str) -> Path:
    return paths.cache_dir() / f"{name}.json"


def read_meta(name: str) -> dict[str, Any] | None:
    """The metadata of a cached name, or None if there is none or it is damaged (see
    `meta_problem`): every field is checked, since the file may have been edited by hand."""
    try:
        raw = meta_path(name).read_bytes()[: META_MAX_BYTES + 1]
        meta = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError):
        return None
    return meta if check_meta(meta) is None else None


def check_meta(meta: Any) -> str | None:
    """What is wrong with a name's metadata, or None when its fields have the types and shapes
    charrnn writes: sha256 64 hex digits, size a count of bytes, source a string."""
    if not isinstance(meta, dict):
        return "not a JSON object"
    if not isinstance(meta.get("sha256"), str) or not SHA_RE.fullmatch(meta["sha256"]):
        return "sha256 is not 64 hex digits"
    size = meta.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return "size is not a number of bytes"
    if not isinstance(meta.get("source"), str):
        return "source is not a string"
    return None


def meta_problem(name: str) -> str | None:
    """Why the metadata file of `name` cannot be used (naming the file), or None if it can."""
    path = meta_path(name)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{path}: cannot be read ({exc.strerror})"
    if len(raw) > META_MAX_BYTES:
        return f"{path}: {len(raw):,} bytes, too large to be a corpus's metadata"
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return f"{path}: not valid JSON ({exc})"
    why = check_meta(meta)
    return f"{path}: {why}" if why else None


def write_meta(name: str, source: str, sha256: str, size: int, **extra: Any) -> None:
    """Point `name` at the text with this sha256 (the text must be stored first)."""
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    meta = {"name": name, "source": source, "sha256": sha256, "size": size, "fetched_at": now}
    meta.update(extra)
    paths.atomic_write_text(meta_path(name), json.dumps(meta, indent=2) + "\n")


def sha256_file(path: Path) -> str:
    """The sha256 (hex) of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def find_blob(sha256: str, size: int | None = None) -> Path | None:
    """The stored text with this sha256 when its bytes still hash to it, else None."""
    if not isinstance(sha256, str) or not SHA_RE.fullmatch(sha256):
        return None
    path = blob_path(sha256)
    try:
        if size is not None and path.stat().st_size != size:
            return None
        return path if sha256_file(path) == sha256 else None
    except OSError:
        return None


def valid_cached(
    name: str, sha256: str | None = None, source: str | None = None
) -> CorpusFile | None:
    """The cached name if its text matches its metadata (and `sha256`, or else `source` when
    given); None otherwise."""
    migrate(name)
    meta = read_meta(name)
    if meta is None:
        return None
    if sha256 is not None and meta["sha256"] != sha256:
        return None
    if sha256 is None and source is not None and meta["source"] != source:
        return None
    path = find_blob(meta["sha256"], meta["size"])
    if path is None:
        return None
    return CorpusFile(name, path, meta["sha256"], meta["size"], meta["source"])


def migrate(name: str | None = None) -> None:
    """Move the texts of a cache written before content addressing (`<name>.txt`, or only
    `name`'s) to their blobs, in place: the name's metadata already says which text it is.
    A text that no longer matches its metadata is moved under its own hash, so nothing is lost
    (`fetch --gc` frees it). Where the cache cannot be written, the old files stay as they are."""
    folder = paths.cache_dir()
    if name is not None:
        old_files = [legacy_text_path(name)]
    elif folder.is_dir():
        old_files = [p for p in folder.glob("*.txt") if looks_like_name(p.stem)]
    else:
        return
    for old in old_files:
        if not meta_path(old.stem).is_file():
            continue  # not a text charrnn cached: not ours to move
        with contextlib.suppress(OSError):  # gone (another process), or a read-only cache
            sha = sha256_file(old)
            blob_dir().mkdir(exist_ok=True)
            if find_blob(sha) is not None:
                old.unlink()
            else:
                paths.move_into_place(old, blob_path(sha))


@contextlib.contextmanager
def lock(name: str, wait: float) -> Iterator[bool]:
    """Best-effort exclusive lock on `<name>.lock`, so one process downloads or builds a corpus
    and the others find it cached; after `wait` seconds go on without it (unique temps and the
    atomic move keep the cache whole anyway). Yields whether it is held."""
    with locks.file_lock(paths.cache_dir() / f"{name}.lock", wait=wait, best_effort=True) as held:
        yield held.held


def prepare() -> Path:
    """The cache folder and its blobs, made if missing, with the temps of dead processes swept
    (in every folder of the cache) and an old cache migrated."""
    folder = paths.cache_dir()
    with paths.storage_errors(folder):
        blob_dir().mkdir(parents=True, exist_ok=True)
    paths.sweep_tree(folder)  # blobs/, encoded/ and what else is below
    migrate()
    return folder


def blob_writer(label: str) -> Path:
    """The path a text being written is named by until its sha256 is known (its temp file is
    `.<label>.txt.<pid>...tmp` among the blobs, and a refused write names it)."""
    return blob_dir() / f"{label}.txt"


def store(
    chunks: Iterable[bytes],
    label: str,
    named: str,
    progress: Progress | None = None,
    total: int | None = None,
) -> tuple[Path, str, int]:
    """Write text chunks, checked as they come, into the cache as the blob of their sha256;
    return (path, sha256, size). `label` names the source in errors, `named` the text."""
    prepare()
    writing = blob_writer(named)
    with paths.atomic_file(writing) as pending:
        sink = TextSink(pending.fh, label, writing)
        for chunk in chunks:
            sink.write(chunk)
            if progress is not None:
                progress(sink.size, total)
        sha, size = sink.finish()
        pending.final = blob_path(sha)
    return pending.final, sha, size


def read_chunks(fh: IO[bytes]) -> Iterator[bytes]:
    while chunk := fh.read(READ_CHUNK):
        yield chunk
