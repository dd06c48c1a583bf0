"""Renames that check the destination at the moment of the move: `renameat2` (Linux 3.15+,
through ctypes) with RENAME_NOREPLACE, which refuses a destination that exists, and
RENAME_EXCHANGE, which swaps two paths in one step; where the system or the filesystem lacks
it, a hard link (a file) or a folder made as a reservation (a folder) refuses the same.
Standard library only.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from pathlib import Path

RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
AT_FDCWD = -100
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP}


def _renameat2():
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not Linux, or a C library without it
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_RENAMEAT2 = _renameat2()


def rename2(src: Path, dst: Path, flag: int) -> bool:
    """`renameat2(src, dst, flag)`: True when done, False where the system or the filesystem
    lacks it; an OSError (FileExistsError for RENAME_NOREPLACE) when it refuses."""
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), flag) == 0:
        return True
    code = ctypes.get_errno()
    if code in _UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code), str(src), None, str(dst))


def rename_noreplace(src: Path, dst: Path) -> None:
    """Move `src` to `dst` only if nothing is at `dst` at that moment (FileExistsError)."""
    if rename2(src, dst, RENAME_NOREPLACE):
        return
    if src.is_dir() and not src.is_symlink():
        os.mkdir(dst)  # the reservation: a second writer's mkdir fails
        try:
            os.rename(src, dst)  # onto the empty folder; ENOTEMPTY if someone wrote into it
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.rmdir(dst)
            raise FileExistsError(errno.EEXIST, "appeared meanwhile", str(dst)) from exc
        return
    try:
        os.link(src, dst, follow_symlinks=False)  # fails if anything is at dst
    except FileExistsError:
        raise
    except OSError:  # a filesystem without hard links: the best that is left
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "exists", str(dst)) from None
        os.rename(src, dst)
        return
    os.unlink(src)
