"""The paths a user names for charrnn to write (`export --output`, `viz --html/--plot`, `runs
show --plot`): nothing of the user's is removed or replaced without `--force`, and with it only
what charrnn wrote (a regular file, an empty folder, an export whose config.json carries the
format marker and no other file beside it). A FIFO or a character device is written into as a
stream, never renamed over; a link, a folder of the user's, a block device is one line.
`check` looks before any work; the new file or folder is built under a temp name beside the
path and `place` moves it, checking the path again by the move itself (renames.py): a path
that appeared meanwhile is refused; a replace is one RENAME_EXCHANGE, after which the old one
must be what `check` saw and still charrnn's own, else it is swapped back. Without the exchange
the old one goes aside (`.NAME.PID.ID.old`) first, and `sweep` puts an aside back when a kill
left the path empty; it also removes the temps of writers that no longer run. Torch-free.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from charrnn_cli.errors import UsageError
from charrnn_cli.storage import paths
from charrnn_cli.storage.renames import RENAME_EXCHANGE, rename2, rename_noreplace

ASIDE_SUFFIX = ".old"
EXPORT_FILES = ("config.json", "model.safetensors", "README.md")  # export/__init__'s names
MARKER_MAX_BYTES = 64 << 20  # a config.json past this is not one charrnn wrote


@dataclass(frozen=True)
class Target:
    """How a user-named path will be written: `kind` is "new", "replace" or "stream"; `seen`
    is the (device, inode) of what a replace may remove."""

    path: Path
    kind: str
    seen: tuple[int, int] | None = None


def is_own_export(folder: Path) -> bool:
    """Whether `folder` is an export charrnn wrote: only its files, regular, and a config.json
    carrying the format marker (`format`, `charrnn`)."""
    try:
        with os.scandir(folder) as it:
            entries = {e.name: e.is_file(follow_symlinks=False) for e in it}
        if set(entries) - set(EXPORT_FILES) or "config.json" not in entries:
            return False
        if not all(entries.values()):
            return False
        config = folder / "config.json"
        if config.stat().st_size > MARKER_MAX_BYTES:
            return False
        data = json.loads(config.read_bytes())
    except (OSError, ValueError, RecursionError):
        return False
    if not isinstance(data, dict):
        return False
    marker = data.get("format")
    return isinstance(marker, int) and not isinstance(marker, bool) and "charrnn" in data


def is_own(path: Path) -> bool:
    """Whether `--force` may remove what is at `path`: a regular file, an empty folder or an
    export of charrnn's own (never a link, a device, a FIFO or any other folder)."""
    try:
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode):
            return True
        if not stat.S_ISDIR(st.st_mode):
            return False
        with os.scandir(path) as it:
            return not any(it) or is_own_export(path)
    except OSError:
        return False


def _what(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "a socket" if stat.S_ISSOCK(mode) else "not a file or folder"


def check(path: Path, force: bool, folder: bool = False, option: str = "--output") -> Target:
    """How `path` (given as `option`) may be written: a file, or a folder when `folder`. A
    UsageError (one line) for a path charrnn must not touch, before any work is done."""
    if path.name in ("", ".", ".."):
        raise UsageError(f"{option} {str(path)!r} names no file or folder to write")
    sweep(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{option} {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not path.parent.is_dir():
        raise UsageError(f"{path.parent} is not a folder: make it first")
    if st is None:
        return Target(path, "new")
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        with contextlib.suppress(OSError):
            if _is_stream(os.stat(path).st_mode) and not folder:
                return Target(path, "stream")
        raise UsageError(
            f"{path} is a symbolic link: charrnn neither replaces a link nor writes through it "
            f"to a file; give the path it points to, or another {option}"
        )
    if _is_stream(mode) and not folder:
        return Target(path, "stream")
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise UsageError(
            f"{path} is {_what(mode)}: charrnn writes {'a folder' if folder else 'a file'} "
            f"only to a new path, a file or a folder of its own; pick another {option}"
        )
    if not force:
        raise UsageError(f"{path} exists: pass --force to replace it, or pick another {option}")
    if stat.S_ISDIR(mode) and not is_own(path):
        raise UsageError(
            f"{path} is a folder that holds no exported model: --force replaces only files, "
            f"empty folders and exported folders; remove it yourself or pick another {option}"
        )
    return Target(path, "replace", (st.st_dev, st.st_ino))


def _is_stream(mode: int) -> bool:
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def write_bytes(target: Target, data: bytes) -> None:
    """Write `data` to the checked path: into it as a stream, or as a temp file beside it
    moved into place (`place`)."""
    if target.kind == "stream":
        _stream(target.path, data)
        return
    final = target.path
    tmp = paths.temp_path(final)
    with paths.storage_errors(final):
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            place(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


@contextlib.contextmanager
def new_folder(target: Target) -> Iterator[Path]:
    """A temp folder beside the checked path to fill; moved into place (`place`) when the
    block ends without an exception, removed otherwise (a kill leaves it to `sweep`)."""
    tmp = paths.temp_path(target.path)
    with paths.storage_errors(target.path):
        tmp.mkdir()
        try:
            yield tmp
            place(tmp, target)
        finally:
            _remove(tmp)


def _stream(path: Path, data: bytes) -> None:
    """Write into a FIFO or a character device as `>` would, never creating or truncating: a
    path that is no longer one when opened is refused unwritten."""
    with paths.storage_errors(path):
        try:
            fd = os.open(path, os.O_WRONLY | getattr(os, "O_NOCTTY", 0) | os.O_CLOEXEC)
        except FileNotFoundError:
            raise _changed(path) from None
        with os.fdopen(fd, "wb") as fh:
            if not _is_stream(os.fstat(fd).st_mode):
                raise _changed(path)
            fh.write(data)


def _changed(path: Path) -> UsageError:
    return UsageError(
        f"{path} changed while charrnn was writing it (something else wrote there): nothing was "
        "replaced; run it again, or pick another path"
    )


def place(tmp: Path, target: Target) -> None:
    """Move the finished `tmp` to the checked path. A new path must still be free at that
    moment; a replace removes only what `check` saw, if it is still charrnn's own."""
    final = target.path
    if target.kind == "new":
        try:
            rename_noreplace(tmp, final)
        except FileExistsError:
            raise _changed(final) from None
    else:
        try:
            swapped = rename2(tmp, final, RENAME_EXCHANGE)  # one step: never an empty path
        except FileNotFoundError:  # removed meanwhile: the path is new again
            return place(tmp, Target(final, "new"))
        if not swapped:
            _replace_aside(tmp, target)
        elif not _same(tmp, target):
            _swap_back(tmp, final)
            raise _changed(final)
        else:
            _remove(tmp)
    paths.fsync_dir(final.parent)


def _swap_back(tmp: Path, final: Path) -> None:
    """Put back what an exchange took from `final` that is not charrnn's to remove; where that
    fails, keep it under a name no sweep removes and say where."""
    try:
        if rename2(tmp, final, RENAME_EXCHANGE):
            return
    except OSError:
        pass
    kept = final.with_name(f"{final.name}.kept-{os.getpid()}")
    os.rename(tmp, kept)
    raise UsageError(f"{final} changed while charrnn was writing it: what was there is now {kept}")


def _same(old: Path, target: Target) -> bool:
    try:
        st = os.lstat(old)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == target.seen and is_own(old)


def _replace_aside(tmp: Path, target: Target) -> None:
    """The replace where RENAME_EXCHANGE is missing: the old one renamed aside, checked, the
    new one moved in, the old one removed. A kill in between leaves the aside, which `sweep`
    puts back when the path is empty."""
    final = target.path
    aside = paths.temp_path(final).with_suffix(ASIDE_SUFFIX)
    try:
        rename_noreplace(final, aside)
    except FileNotFoundError:  # removed meanwhile: the path is new again
        return place(tmp, Target(final, "new"))
    if not _same(aside, target):
        with contextlib.suppress(OSError):
            rename_noreplace(aside, final)
        raise _changed(final)
    try:
        rename_noreplace(tmp, final)
    except FileExistsError:
        raise _changed(final) from None
    finally:
        if os.path.lexists(final):
            _remove(aside)
        else:  # not moved in: the old one goes back
            with contextlib.suppress(OSError):
                rename_noreplace(aside, final)


def _remove(path: Path) -> None:
    """Remove a file, a link (never what it points to) or a folder and all in it."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISDIR(os.lstat(path).st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)


def sweep(final: Path) -> list[Path]:
    """Clean up beside `final` after writers that no longer run: their temp files and folders
    are removed; an aside of theirs goes back to `final` when that is empty, and is removed
    only while it is charrnn's own. Returns what was removed or put back."""
    prefix, done = f".{final.name}.", []
    try:
        with os.scandir(final.parent) as it:
            names = [e.name for e in it]
    except (OSError, ValueError):
        return done
    for name in names:
        parts = name[len(prefix) :].split(".")
        if not name.startswith(prefix) or len(parts) != 3:
            continue
        if f".{parts[2]}" not in (paths.TMP_SUFFIX, ASIDE_SUFFIX) or not parts[0].isdigit():
            continue
        pid, path = int(parts[0]), final.parent / name
        if pid == os.getpid() or paths.pid_alive(pid):
            continue
        with contextlib.suppress(OSError):
            if name.endswith(ASIDE_SUFFIX) and not os.path.lexists(final):
                rename_noreplace(path, final)
            elif name.endswith(paths.TMP_SUFFIX) or is_own(path):
                _remove(path)
            else:
                continue
            done.append(path)
    return done
