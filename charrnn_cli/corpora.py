"""The corpus registry and cache: fetch a named corpus, a URL, a local file or stdin into it.

The job: turn what the user names (`tinyshakespeare`, `pysrc`, a URL, a path, `-`) into a
`CorpusFile` on disk with a known sha256. Cached corpora live in `paths.cache_dir()` as
`<name>.txt` plus `<name>.json` metadata (name, source, sha256, size, fetched_at). Downloads go
through `charrnn_cli.download`; `pysrc` is built offline from this Python's standard-library
sources. Every file is written to a unique temp and moved into place, and concurrent fetches of
one corpus take a best-effort lock so one downloads and the others find it cached.

Nothing here prints: callers pass an optional `progress(done, total)` callback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import sys
import sysconfig
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from charrnn_cli import download, paths
from charrnn_cli.errors import CorruptFileError, NetworkError, UsageError

Progress = Callable[[int, "int | None"], None]

DEFAULT = "tinyshakespeare"
PYSRC = "pysrc"
PYSRC_MAX_BYTES = 4_000_000
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
SHA_RE = re.compile(r"[0-9a-fA-F]{64}")
EXCLUDED_DIRS = frozenset({"site-packages", "dist-packages", "__pycache__"})


@dataclass(frozen=True)
class Entry:
    """One corpus in the registry (`url` None: built locally)."""

    name: str
    url: str | None
    sha256: str | None
    size: int | None
    description: str


REGISTRY: dict[str, Entry] = {
    e.name: e
    for e in (
        Entry(
            "tinyshakespeare",
            "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
            "tinyshakespeare/input.txt",
            "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
            1_115_394,
            "Tiny Shakespeare (karpathy/char-rnn), about 1 MB",
        ),
        Entry(
            "shakespeare",
            "https://cs.stanford.edu/people/karpathy/char-rnn/shakespeare_input.txt",
            "59a0ad62833b2e15ec811c548618876359e902717431236e52699a0e2bc253ca",
            None,
            "The complete works of Shakespeare, about 4.4 MB",
        ),
        Entry(PYSRC, None, None, None, "This Python's standard-library sources (offline)"),
    )
}


@dataclass(frozen=True)
class CorpusFile:
    name: str  # cache name, or the file's stem for a plain path
    path: Path  # the text file to read
    sha256: str
    size: int
    source: str  # url, "pysrc", "file:<abs path>", or "stdin"


# ---------------------------------------------------------------- names, cache files, metadata


def check_name(name: str) -> str:
    """Return `name` if it is a safe cache name, else raise UsageError."""
    if not NAME_RE.fullmatch(name) or ".." in name or len(name) > 128:
        raise UsageError(
            f"invalid corpus name {name!r}: use letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (no '/' or '..')"
        )
    return name


def name_from_url(url: str) -> str:
    """A cache name from a URL's file stem (`.../input.txt` -> `input`), sanitized."""
    from urllib.parse import unquote, urlparse

    parsed = urlparse(url)
    return sanitize_name(PurePosixPath(unquote(parsed.path)).stem or (parsed.hostname or ""))


def sanitize_name(text: str) -> str:
    """`text` made into a valid cache name (other characters become '-'); "corpus" if empty."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text)
    name = re.sub(r"\.{2,}", ".", name).lstrip("._-")[:128].rstrip("-")
    return name or "corpus"


def is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def check_url(url: str) -> str:
    """Return `url` if it can be requested at all, else raise UsageError (a malformed URL is
    the user's typo, not a network failure)."""
    from urllib.parse import urlsplit

    why = None
    if any(c.isspace() or ord(c) < 32 for c in url):
        why = "it contains spaces or control characters (encode a space as %20)"
    else:
        try:
            parts = urlsplit(url)
            _ = parts.port  # raises ValueError for a port that is not a number in 0-65535
            if not parts.hostname:
                why = "it names no host"
        except ValueError as exc:
            why = str(exc)
    if why is not None:
        raise UsageError(f"malformed URL {url!r}: {why}")
    return url


def is_offline() -> bool:
    """True when `CHARRNN_OFFLINE` is set to something other than 0/false/no."""
    return os.environ.get("CHARRNN_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def text_path(name: str) -> Path:
    return paths.cache_dir() / f"{name}.txt"


def meta_path(name: str) -> Path:
    return paths.cache_dir() / f"{name}.json"


def read_meta(name: str) -> dict[str, Any] | None:
    """The metadata of a cached corpus, or None if there is none (or it is unreadable)."""
    try:
        meta = json.loads(meta_path(name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _write_meta(name: str, source: str, sha256: str, size: int, **extra: Any) -> None:
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


def _from_meta(name: str, meta: dict[str, Any]) -> CorpusFile:
    return CorpusFile(name, text_path(name), meta["sha256"], int(meta["size"]), meta["source"])


def _valid_cached(
    name: str, sha256: str | None = None, source: str | None = None
) -> CorpusFile | None:
    """The cached corpus if its text file matches its metadata (and `sha256`, or else
    `source` when given); None otherwise."""
    meta = read_meta(name)
    path = text_path(name)
    if meta is None or not path.is_file() or not isinstance(meta.get("sha256"), str):
        return None
    if sha256 is not None and meta["sha256"] != sha256:
        return None
    if sha256 is None and source is not None and meta.get("source") != source:
        return None
    try:
        if path.stat().st_size != meta.get("size") or sha256_file(path) != meta["sha256"]:
            return None
    except OSError:
        return None
    return _from_meta(name, meta)


@contextlib.contextmanager
def _lock(name: str, wait: float) -> Iterator[bool]:
    """Best-effort exclusive `flock` on `<name>.lock`; after `wait` seconds go on without it."""
    try:
        import fcntl
    except ImportError:  # not POSIX: unique temps and os.replace keep it safe anyway
        yield False
        return
    try:
        fd = os.open(paths.cache_dir() / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield False
        return
    acquired = False
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                acquired = True
                break
            except OSError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.05)
        yield acquired
    finally:
        if acquired:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _prepare_cache() -> Path:
    folder = paths.cache_dir()
    with paths.storage_errors(folder):
        folder.mkdir(parents=True, exist_ok=True)
    paths.sweep_stale_temps(folder)
    return folder


def _store(
    chunks: Iterable[bytes],
    label: str,
    final: Path | Callable[[str], Path],
    progress: Progress | None = None,
    total: int | None = None,
) -> tuple[Path, str, int]:
    """Write checked text chunks to a temp in the cache and move it to `final` (or to
    `final(sha256)`); return (path, sha256, size)."""
    folder = _prepare_cache()
    named = final if isinstance(final, Path) else folder / "stdin.txt"
    tmp = paths.temp_path(named)
    try:
        with paths.storage_errors(named):  # a full disk or read-only cache: one clear line
            with open(tmp, "w+b") as fh:
                sink = download.TextSink(fh, label, named)
                for chunk in chunks:
                    sink.write(chunk)
                    if progress is not None:
                        progress(sink.size, total)
                sha, size = sink.finish()
                fh.flush()
                os.fsync(fh.fileno())
            target = final if isinstance(final, Path) else final(sha)
            os.replace(tmp, target)
            paths.fsync_dir(folder)
            return target, sha, size
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _read_chunks(fh: IO[bytes]) -> Iterator[bytes]:
    while chunk := fh.read(1 << 16):
        yield chunk


# ---------------------------------------------------------------- fetching


def fetch(
    source: str = DEFAULT,
    *,
    name: str | None = None,
    sha256: str | None = None,
    force: bool = False,
    mirror: str | None = None,
    max_bytes: int | None = None,
    progress: Progress | None = None,
    **network_knobs: Any,
) -> CorpusFile:
    """Make sure corpus `source` (a registry name, a cached name, `pysrc` or an http(s) URL) is
    cached and return it. A registry name is fetched from `mirror/NAME.txt` when `mirror` (or
    `CHARRNN_MIRROR`) is set; `CHARRNN_OFFLINE=1` forbids any request. `network_knobs` are the
    fields of `download.DownloadOptions` (timeouts, retries, backoff_factor, ...)."""
    opts = download.options(**network_knobs)
    expected = _check_sha(sha256)
    if mirror is None:
        mirror = os.environ.get("CHARRNN_MIRROR", "").strip() or None
    _prepare_cache()
    if max_bytes is not None and source != PYSRC:
        raise UsageError("--max-bytes applies to the pysrc corpus only")
    if is_url(source):
        check_url(source)
        target = check_name(name if name is not None else name_from_url(source))
        return _fetch_url(target, source, expected, None, force, progress, opts)
    if source == PYSRC:
        if expected is not None:
            raise UsageError("pysrc is built locally: --sha256 does not apply to it")
        return build_pysrc(name or PYSRC, max_bytes, force=force, progress=progress)
    if not NAME_RE.fullmatch(source):
        raise UsageError(
            f"{source!r} is neither a corpus name nor an http(s) URL; "
            f"for a local file use `charrnn fetch --from {source}`"
        )
    entry = REGISTRY.get(source)
    if entry is None:
        return _fetch_cached_name(check_name(source), expected, force, progress, opts)
    if expected is not None and expected != entry.sha256:
        raise UsageError(f"--sha256 differs from the registry's sha256 for {source}")
    url = source_url(entry, mirror)
    target = check_name(name or entry.name)
    return _fetch_url(target, url, entry.sha256, entry.size, force, progress, opts)


def source_url(entry: Entry | str, mirror: str | None = None) -> str:
    """Where a registry corpus is downloaded from: `mirror/NAME.txt`, else its own URL."""
    if isinstance(entry, str):
        entry = REGISTRY[entry]
    if mirror:
        if not is_url(mirror):
            raise UsageError(f"--mirror must be an http(s) URL, not {mirror!r}")
        return check_url(f"{mirror.rstrip('/')}/{entry.name}.txt")
    if entry.url is None:
        raise UsageError(f"{entry.name} is built locally and has no URL")
    return entry.url


def _check_sha(sha256: str | None) -> str | None:
    if sha256 is None:
        return None
    value = sha256.strip().lower()
    if not SHA_RE.fullmatch(value):
        raise UsageError(f"--sha256 must be 64 hex digits, not {sha256!r}")
    return value


def _fetch_cached_name(
    name: str,
    expected: str | None,
    force: bool,
    progress: Progress | None,
    opts: download.DownloadOptions,
) -> CorpusFile:
    meta = read_meta(name)
    if meta is None:
        known = ", ".join(REGISTRY)
        raise UsageError(
            f"unknown corpus {name!r}: known names are {known}; or give an http(s) URL, "
            "or a local file with --from FILE (see `charrnn fetch --list`)"
        )
    source = str(meta.get("source", ""))
    if is_url(source):
        pinned = expected or (meta.get("sha256") if meta.get("pinned") else None)
        return _fetch_url(name, source, pinned, None, force, progress, opts)
    if force:
        raise UsageError(
            f"{name!r} was imported from {source or 'a file'}, so --force cannot fetch it again; "
            f"import it again with `charrnn fetch --from FILE --name {name}`"
        )
    hit = _valid_cached(name, expected)
    if hit is not None:
        return hit
    raise CorruptFileError(
        f"cached corpus {name!r} (from {source or 'unknown'}) is missing, damaged or different; "
        f"import it again with `charrnn fetch --from FILE --name {name}`"
    )


def _fetch_url(
    name: str,
    url: str,
    expected: str | None,
    size: int | None,
    force: bool,
    progress: Progress | None,
    opts: download.DownloadOptions,
) -> CorpusFile:
    if not force and (hit := _valid_cached(name, expected, url)) is not None:
        return hit
    if is_offline():
        raise NetworkError(
            f"CHARRNN_OFFLINE=1: not downloading {url}; unset CHARRNN_OFFLINE, or "
            "work offline with `charrnn fetch pysrc` or `charrnn fetch --from FILE`"
        )
    with _lock(name, opts.lock_wait):
        if not force and (hit := _valid_cached(name, expected, url)) is not None:
            return hit  # another process fetched it while we waited
        final = text_path(name)
        sha, got = download.download(
            url, final, expected_sha256=expected, expected_size=size, progress=progress, opts=opts
        )
        _write_meta(name, url, sha, got, pinned=expected is not None)
    return CorpusFile(name, final, sha, got, url)


# ---------------------------------------------------------------- pysrc


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _stdlib_files(root: Path) -> Iterator[tuple[str, Path]]:
    """(relative posix path, path) of the `.py` files under `root`, in a fixed sorted order."""
    for folder, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDED_DIRS)
        for filename in sorted(f for f in filenames if f.endswith(".py")):
            path = Path(folder) / filename
            yield path.relative_to(root).as_posix(), path


def pysrc_chunks(max_bytes: int = PYSRC_MAX_BYTES, root: Path | None = None) -> Iterator[bytes]:
    """The pysrc corpus in pieces: each UTF-8 stdlib file after a `# ==== rel.py ====` line,
    up to `max_bytes` in all; the file that crosses the cap is cut there, on a character
    boundary (so the corpus ends at a file boundary or within 3 bytes of the cap)."""
    budget = max_bytes
    for rel, path in _stdlib_files(root or stdlib_dir()):
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if "\x00" in text:
            continue
        if not text.endswith("\n"):
            text += "\n"
        piece = f"# ==== {rel} ====\n{text}".encode()
        if len(piece) < budget:
            yield piece
            budget -= len(piece)
            continue
        # the cap: cut here, dropping a character split by it
        yield piece[:budget].decode("utf-8", errors="ignore").encode("utf-8")
        return


def build_pysrc(
    name: str = PYSRC,
    max_bytes: int | None = None,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> CorpusFile:
    """Build the pysrc corpus from this Python's standard library (no network), capped at
    `max_bytes` (default 4,000,000). A cached one is reused unless `force` or a different
    `max_bytes` is asked for, so a run trained on it finds the same text later."""
    check_name(name)
    if max_bytes is not None and max_bytes < 1:
        raise UsageError("--max-bytes must be at least 1")
    meta = read_meta(name) or {}
    same = max_bytes is None or meta.get("max_bytes") == max_bytes
    if not force and same and (hit := _valid_cached(name, source=PYSRC)) is not None:
        return hit
    max_bytes = PYSRC_MAX_BYTES if max_bytes is None else max_bytes
    root = stdlib_dir()
    version = ".".join(map(str, sys.version_info[:3]))
    if not root.is_dir():
        raise UsageError(f"no standard-library sources at {root}: use --from FILE instead")
    _prepare_cache()
    with _lock(name, download.DEFAULTS.lock_wait):
        chunks = pysrc_chunks(max_bytes, root)
        final, sha, size = _store(chunks, PYSRC, text_path(name), progress, max_bytes)
        _write_meta(name, PYSRC, sha, size, max_bytes=max_bytes, python=version, root=str(root))
    return CorpusFile(name, final, sha, size, PYSRC)


# ---------------------------------------------------------------- local files and stdin


def _stdin_bytes() -> IO[bytes]:
    stdin = sys.stdin
    if stdin is None:
        raise UsageError("no stdin to read the corpus from")
    with contextlib.suppress(AttributeError, ValueError, OSError):
        if stdin.isatty():
            raise UsageError(
                "'-' reads the corpus from stdin, but stdin is a terminal: pipe a file in"
            )
    buffer = getattr(stdin, "buffer", None)
    if buffer is None:
        import io

        return io.BytesIO(stdin.read().encode("utf-8"))
    return buffer


def import_file(src: str | Path, name: str) -> CorpusFile:
    """Copy a local text file (or stdin for "-") into the cache as `name`."""
    check_name(name)
    if str(src) == "-":
        final, sha, size = _store(_read_chunks(_stdin_bytes()), "stdin", text_path(name))
        source = "stdin"
    else:
        path = Path(src).expanduser()
        if not path.is_file():
            raise UsageError(f"no such file: {src}")
        source = f"file:{path.resolve()}"
        with open(path, "rb") as fh:
            final, sha, size = _store(_read_chunks(fh), str(src), text_path(name))
    _write_meta(name, source, sha, size)
    return CorpusFile(name, final, sha, size, source)


def _check_local(path: Path) -> CorpusFile:
    """A file used in place: hashed and checked to be UTF-8 text, not copied."""
    with open(path, "rb") as fh:
        sink = download.TextSink(None, str(path))
        for chunk in _read_chunks(fh):
            sink.write(chunk)
        sha, size = sink.finish()
    full = path.resolve()
    return CorpusFile(path.stem, full, sha, size, f"file:{full}")


def resolve(spec: str, *, progress: Progress | None = None) -> CorpusFile:
    """`NAME` (a registry name or a cached name; a registry corpus that is not cached yet is
    fetched, honouring CHARRNN_MIRROR/CHARRNN_OFFLINE), an existing file `PATH` (used in place,
    sha256 computed, not copied), or `-` (stdin read fully, imported into the cache as
    `stdin-<first 12 hex of sha256>` so a later resume finds it)."""
    if spec == "-":
        final, sha, size = _store(
            _read_chunks(_stdin_bytes()), "stdin", lambda sha: text_path(f"stdin-{sha[:12]}")
        )
        _write_meta(final.stem, "stdin", sha, size)
        return CorpusFile(final.stem, final, sha, size, "stdin")
    if is_url(spec):
        return fetch(spec, progress=progress)
    if NAME_RE.fullmatch(spec) and (spec in REGISTRY or read_meta(spec) is not None):
        return fetch(spec, progress=progress)
    path = Path(spec).expanduser()
    if path.is_file():
        return _check_local(path)
    if path.exists():
        raise UsageError(f"{spec} is not a file")
    raise UsageError(
        f"no corpus or file named {spec!r}: known corpora are {', '.join(REGISTRY)} "
        "(see `charrnn fetch --list`)"
    )


# ---------------------------------------------------------------- listing


def _status(name: str, meta: dict[str, Any] | None) -> str:
    path = text_path(name)
    if meta is None or not path.is_file():
        return "missing"
    return "cached" if path.stat().st_size == meta.get("size") else "damaged"


def list_corpora() -> list[dict]:
    """The registry entries plus every other cached corpus: name, status (cached, missing or
    damaged), size, sha256, source, description and path (when cached)."""
    rows: list[dict] = []
    for entry in REGISTRY.values():
        meta = read_meta(entry.name)
        status = _status(entry.name, meta)
        here = meta if status != "missing" and meta is not None else {}
        rows.append(
            {
                "name": entry.name,
                "status": status,
                "size": here.get("size", entry.size),
                "sha256": here.get("sha256", entry.sha256),
                "source": entry.url or PYSRC,
                "description": entry.description,
                "path": str(text_path(entry.name)) if here else None,
            }
        )
    folder = paths.cache_dir()
    for meta_file in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        name = meta_file.stem
        if name in REGISTRY or not NAME_RE.fullmatch(name):
            continue
        meta = read_meta(name) or {}
        rows.append(
            {
                "name": name,
                "status": _status(name, meta or None),
                "size": meta.get("size"),
                "sha256": meta.get("sha256"),
                "source": meta.get("source"),
                "description": "",
                "path": str(text_path(name)),
            }
        )
    return rows
