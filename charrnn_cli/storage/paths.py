"""Where charrnn keeps its files, what they may be named, and how they are written whole.

Corpora are a cache (they can be fetched again) and live in the platformdirs user cache dir;
runs are the user's data and live in the user data dir. `CHARRNN_HOME` moves both; one that
names a file, or an XDG variable that is relative, is one clear line, not a surprise later.
Corpus and run names follow one rule (names.py's `check_name`, named here too), since both
become file or folder names.
Every write goes through `atomic_file`: a uniquely named temp file in the same folder, fsynced,
moved into place with `os.replace` (atomic on POSIX and Windows), and the folder fsynced. A
disk that refuses a write (full, a size limit, read-only, no permission) becomes a one-line
`WriteError`, with the old file kept. Standard library, platformdirs and `charrnn_cli.errors` only.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from charrnn_cli.errors import UsageError, WriteError
from charrnn_cli.storage.names import NAME_MAX as NAME_MAX
from charrnn_cli.storage.names import NAME_SHAPE as NAME_SHAPE
from charrnn_cli.storage.names import check_name as check_name
from charrnn_cli.storage.names import is_name as is_name
from charrnn_cli.storage.names import make_name as make_name

APP = "charrnn"
TMP_SUFFIX = ".tmp"

# errnos that mean "this file cannot be written (or read) here", with the words a user reads
STORAGE_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EFBIG: "file too large (the disk is full or a file-size limit was reached)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "not a folder (a file is where a folder should be)",
    errno.EEXIST: "a file is where a folder should be",
    errno.EISDIR: "is a folder, not a file",
    errno.ENAMETOOLONG: "file name too long",
    errno.ELOOP: "too many levels of symbolic links",
}


FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def is_storage_error(exc: BaseException) -> bool:
    """Whether `exc` is an OSError saying the disk or folder refuses the write."""
    return isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc` (an OSError, or the WriteError made of one) says the disk is full: no
    space, a quota or a file-size limit, as opposed to a folder that may not be written."""
    return getattr(exc, "errno", None) in FULL_ERRNOS


def write_error(path: Path | str | None, exc: OSError) -> WriteError:
    """The one-line error for a failed write of `path`."""
    reason = STORAGE_ERRNOS.get(exc.errno or 0) or exc.strerror or type(exc).__name__
    where = f"cannot write {path}" if path else "cannot write a file"
    error = WriteError(f"{where}: {reason}; nothing was changed: {storage_hint(exc, path)}")
    error.errno = exc.errno
    return error


def storage_hint(exc: OSError, path: Path | str | None = None) -> str:
    """What the user can do about a refused write (or read) of `path` (else the error's own
    file): CHARRNN_HOME is named only for a file inside charrnn's folders, never for stdout
    or a file the user named."""
    where = path if path is not None else exc.filename
    ours = where is not None and in_storage(Path(os.fsdecode(where)))
    elsewhere = ", or point CHARRNN_HOME at another folder" if ours else ""
    if exc.errno == errno.EROFS:
        return "point CHARRNN_HOME at a writable folder" if ours else "use a writable folder"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "check its permissions" + elsewhere
    if exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        return "move what is in the way" + elsewhere
    if exc.errno in (errno.ENAMETOOLONG, errno.ELOOP):
        return "use a shorter or simpler path" + elsewhere
    return "free some space" + (", or point CHARRNN_HOME at another disk" if ours else "")


def in_storage(path: Path) -> bool:
    """Whether `path` is inside charrnn's own folders (CHARRNN_HOME, or the cache and data
    folders), as opposed to stdout or a file the user named."""
    try:
        roots = [cache_dir().parent, data_dir().parent]
    except UsageError:
        return False
    full = Path(os.path.abspath(path))
    return any(full == root or root in full.parents for root in roots)


@contextlib.contextmanager
def storage_errors(path: Path | str | None) -> Iterator[None]:
    """Turn a disk-full / read-only / permission OSError inside the block into a WriteError."""
    try:
        yield
    except OSError as exc:
        if not is_storage_error(exc):
            raise
        raise write_error(path, exc) from None


def user_path(text: str) -> Path:
    """A path the user typed, `~` and `~user` expanded; one that names no home is a usage
    error (Path.expanduser raises RuntimeError for it)."""
    try:
        return Path(text).expanduser()
    except RuntimeError:
        raise UsageError(f"{text}: '~' names no home folder here") from None


def home_override() -> Path | None:
    """The `CHARRNN_HOME` folder, when set and not empty (made absolute, so paths recorded in
    a run stay right from any folder); a UsageError when it names a file, or a path through
    one, rather than a folder (which is made if missing)."""
    value = os.environ.get("CHARRNN_HOME", "").strip()
    if not value:
        return None
    home = Path(os.path.abspath(user_path(value)))
    for folder in (home, *home.parents):
        if folder.exists() or folder.is_symlink():
            if not folder.is_dir():
                what = "is a file" if folder == home else f"goes through {folder}, a file"
                raise UsageError(
                    f"CHARRNN_HOME={value} {what}, not a folder: point CHARRNN_HOME at a "
                    "folder (it is made if missing)"
                )
            break
    return home


def _platform_dir(kind: str) -> Path:
    """platformdirs' user cache or data folder for charrnn; a UsageError when the XDG variable
    it would read is a relative path, which the XDG spec forbids (platformdirs would silently
    use the default instead)."""
    import platformdirs

    if platformdirs.PlatformDirs.__name__ == "Unix":  # the platforms that read XDG_*
        name = "XDG_CACHE_HOME" if kind == "cache" else "XDG_DATA_HOME"
        value = os.environ.get(name, "").strip()
        if value and not os.path.isabs(os.path.expanduser(value)):
            raise UsageError(
                f"{name}={value} is a relative path, which the XDG spec does not allow: set it "
                "to an absolute path, unset it, or set CHARRNN_HOME"
            )
    if kind == "cache":
        return platformdirs.user_cache_path(APP, appauthor=False)
    return platformdirs.user_data_path(APP, appauthor=False)


def cache_dir() -> Path:
    """Folder of cached corpora: `$CHARRNN_HOME/corpora` or `<user cache dir>/charrnn/corpora`."""
    home = home_override()
    return (home if home is not None else _platform_dir("cache")) / "corpora"


def data_dir() -> Path:
    """Folder of the checkpoint store: `$CHARRNN_HOME/runs` or `<user data dir>/charrnn/runs`."""
    home = home_override()
    return (home if home is not None else _platform_dir("data")) / "runs"


def temp_path(final: Path) -> Path:
    """A unique temp name beside `final`, carrying our pid so stale ones can be told apart."""
    return final.with_name(f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}")


def fsync_dir(folder: Path) -> None:
    """Make a rename inside `folder` durable (a no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass
class Pending:
    """A file being written: `fh` is open on a temp file beside `final`. Set `final` (in the
    same folder) before the block ends to name the file once its content is known."""

    fh: IO
    final: Path


@contextlib.contextmanager
def atomic_file(final: Path, mode: str = "wb") -> Iterator[Pending]:
    """Open a temp file beside `final`; when the block ends without an exception, fsync it and
    move it to `pending.final`. The one place charrnn moves a file into place.

    On any exception (or a kill) the temp file is removed or left as a stale temp that
    `sweep_stale_temps` clears; the final path holds either its old file or the complete new
    one. A full disk, a file-size limit or a read-only folder raises `WriteError` (one line).
    `mode` "w+b" lets the writer read back and truncate (a download that restarts).
    """
    tmp = temp_path(final)
    encoding = None if "b" in mode else "utf-8"
    try:
        with storage_errors(final):  # a full disk: one clear line, the old file kept
            final.parent.mkdir(parents=True, exist_ok=True)
            sweep_stale_temps(final.parent, final.name)  # a killed writer's, wherever
            with open(tmp, mode, encoding=encoding) as fh:
                pending = Pending(fh, final)
                yield pending
                fh.flush()
                os.fsync(fh.fileno())
            if pending.final.parent != final.parent:
                raise ValueError(f"{pending.final} is not in the folder of {final}")
            move_into_place(tmp, pending.final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def move_into_place(src: Path, final: Path) -> None:
    """Rename a whole file onto `final` in one step (same filesystem), and make the rename
    durable: readers see the old file or the new one, never a part."""
    os.replace(src, final)
    fsync_dir(final.parent)


@contextlib.contextmanager
def atomic_writer(final: Path, mode: str = "wb") -> Iterator[IO]:
    """`atomic_file` for a writer that knows the final name: yields the open temp file."""
    with atomic_file(final, mode) as pending:
        yield pending.fh


def atomic_write_bytes(final: Path, data: bytes) -> None:
    """Write `data` to `final` atomically."""
    with atomic_writer(final, "wb") as fh:
        fh.write(data)


def atomic_write_text(final: Path, text: str) -> None:
    """Write `text` (UTF-8) to `final` atomically."""
    atomic_write_bytes(final, text.encode("utf-8"))


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (on this machine)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def sweep_stale_temps(folder: Path, name: str | None = None) -> list[Path]:
    """Remove temp files in `folder` left by processes that no longer run (only those of the
    file `name`, when given: what a writer of that file sweeps first); return them."""
    removed: list[Path] = []
    prefix = f".{name}." if name is not None else "."
    try:
        entries = [e.name for e in os.scandir(folder)]
    except OSError:  # not there (yet), or not readable: nothing to sweep
        return removed
    for entry in entries:
        if not (entry.startswith(prefix) and entry.endswith(TMP_SUFFIX)):
            continue
        parts = entry.rsplit(".", 3)  # [.name, pid, uuid, tmp]
        try:
            pid = int(parts[-3])
        except (IndexError, ValueError):
            continue
        if pid == os.getpid() or pid_alive(pid):
            continue
        with contextlib.suppress(OSError):
            (folder / entry).unlink()
            removed.append(folder / entry)
    return removed


def sweep_tree(root: Path) -> list[Path]:
    """`sweep_stale_temps` in `root` and every folder below it (not following links): the
    temps of dead processes wherever charrnn writes inside its own folders."""
    removed: list[Path] = []
    for folder, _, _ in os.walk(root):
        removed += sweep_stale_temps(Path(folder))
    return removed
