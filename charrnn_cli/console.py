"""Terminal output: data to stdout, everything else to stderr through rich.

stdout carries only data (paths, JSON, samples, tab-separated listings). Progress, logs and
errors go to stderr. rich already drops colour and animation when stderr is not a terminal and
honours `NO_COLOR`; `is_interactive()` tells the commands which form of progress to draw.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import signal
import sys
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

# what a failed write to stderr means, as the signal a program that did not ignore it would get
_LOST = {errno.EIO: signal.SIGHUP, errno.EPIPE: getattr(signal, "SIGPIPE", signal.SIGTERM)}
_on_lost: Callable[[int], None] | None = None


@lru_cache(maxsize=1)
def err() -> Console:
    """The stderr console (built on first use: importing rich costs start-up time)."""
    from rich.console import Console

    return Console(file=_Stderr(), stderr=True, highlight=False)  # type: ignore[arg-type]


class _Stderr:
    """sys.stderr as rich writes to it, for a terminal or a pipe that may go away mid-command.

    A write that fails (EIO once the terminal hung up, EPIPE once the reader left, ENOSPC) points
    fd 2 at /dev/null and tells `on_stderr_lost`'s callback, instead of ending the command where
    it stands: a trainer then saves, as for the signal a closed terminal sends. Resolved at each
    write, so tests that swap sys.stderr (and rich's own redirection) are followed."""

    @staticmethod
    def _target() -> Any:
        stream = sys.stderr
        return getattr(stream, "rich_proxied_file", stream)

    def write(self, text: str) -> int:
        try:
            return self._target().write(text)
        except OSError as exc:
            _stderr_lost(exc)
            return len(text)

    def flush(self) -> None:
        try:
            self._target().flush()
        except OSError as exc:
            _stderr_lost(exc)

    def __getattr__(self, name: str) -> Any:
        if name == "rich_proxied_file":  # this is the end of rich's chain of proxies
            raise AttributeError(name)
        return getattr(self._target(), name)


def on_stderr_lost(callback: Callable[[int], None] | None) -> None:
    """Call `callback(signum)` when writing to stderr fails: SIGHUP for a hung-up terminal,
    SIGPIPE for a reader that left (None: just go on without stderr)."""
    global _on_lost
    _on_lost = callback


def _stderr_lost(exc: OSError) -> None:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        if _Stderr._target().fileno() == 2:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
    signum = _LOST.get(exc.errno or 0)
    if _on_lost is not None and signum is not None:
        _on_lost(signum)


def reset() -> None:
    """Forget the cached console (tests swap sys.stderr between runs)."""
    err.cache_clear()


def is_interactive() -> bool:
    """True when stderr is a terminal that can show live progress."""
    return err().is_terminal and not err().is_dumb_terminal


def log(message: str) -> None:
    """One line of information on stderr (rich markup allowed)."""
    err().print(message, soft_wrap=True)


def warn(message: str) -> None:
    """A warning line on stderr."""
    from rich.markup import escape

    err().print(f"[yellow]warning:[/] {escape(readable(message))}", soft_wrap=True)


def error(message: str) -> None:
    """The one line a user's mistake gets on stderr."""
    from rich.markup import escape

    err().print(f"[bold red]error:[/] {escape(readable(message))}", soft_wrap=True)


def stopped(message: str) -> None:
    """The last line of a run that a signal stopped and that saved: a stop, not an error."""
    from rich.markup import escape

    err().print(escape(readable(message)), soft_wrap=True)


_ESCAPED_BYTE = re.compile(r"\\udc([89a-fA-F][0-9a-fA-F])")


def readable(message: str) -> str:
    """`message` with the bytes that were not UTF-8 (in a path, a name or an argument: Python
    carries them as surrogate escapes, and repr() shows them as '\\udcff') written as the bytes
    they were, '\\xff', so a message never shows a character that is not there nor fails to
    print."""
    message = _ESCAPED_BYTE.sub(r"\\x\1", message)
    return "".join(
        f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF
        else f"\\u{ord(c):04x}" if 0xD800 <= ord(c) <= 0xDFFF
        else c
        for c in message
    )  # fmt: skip


def out(text: str, end: str = "\n") -> None:
    """Data on stdout, flushed, so pipelines see it at once. A stdout that refuses it (a full
    disk, /dev/full) is a CharrnnError saying so; a reader that left is a BrokenPipeError,
    which ends the command quietly."""
    with stdout_errors():
        sys.stdout.write(text + end)
        sys.stdout.flush()


@contextlib.contextmanager
def stdout_errors() -> Iterator[None]:
    """Inside the block only stdout is written: an OSError there is stdout's, and becomes one
    line that names stdout (not CHARRNN_HOME, where no file was being written)."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise stdout_error(exc) from None


def stdout_error(exc: OSError) -> Exception:
    """The one line for a stdout that refuses data; stdout is then pointed at /dev/null, so
    the final flush at exit cannot fail again (and turn the exit code into 120)."""
    from charrnn_cli.errors import CharrnnError
    from charrnn_cli.storage.paths import STORAGE_ERRNOS

    where = ""
    with contextlib.suppress(OSError, ValueError):
        where = f" ({os.readlink(f'/proc/self/fd/{sys.stdout.fileno()}')})"
    silence_stdout()
    reason = STORAGE_ERRNOS.get(exc.errno or 0) or exc.strerror or type(exc).__name__
    return CharrnnError(
        f"cannot write to stdout{where}: {reason}; free some space where stdout goes, or "
        "send it elsewhere"
    )


def out_json(value: Any) -> None:
    """One JSON document on stdout."""
    out(json_text(value))


# what must never reach a screen or a page raw: C0 and C1 controls, DEL, the line and paragraph
# separators, the bidirectional controls (they reorder what is shown) and lone surrogates
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_SHOWN = {0x7F: "\u2421", 0x2028: "\u2424", 0x2029: "\u2424"}  # ␡, ␤


def visible(text: str, keep: str = "\n\t") -> str:
    """`text` safe to show on a terminal or a page: a C0 control is its picture (ESC ␛, NUL
    ␀, CR ␍), DEL ␡, a line or paragraph separator ␤, and a C1 or bidirectional control or a
    lone surrogate �; the characters in `keep` stay."""

    def one(m: re.Match[str]) -> str:
        c = m.group()
        if c in keep:
            return c
        code = ord(c)
        return chr(0x2400 + code) if code < 0x20 else _SHOWN.get(code, "\ufffd")

    return _UNSAFE.sub(one, text)


def json_text(value: Any, **options: Any) -> str:
    """`value` as one line of JSON whose text is safe on a terminal or a page: a character
    `visible` would change is written as its \\u escape (the same string to a JSON reader),
    so nothing raw reaches a screen and a lone surrogate cannot fail the write."""
    text = json.dumps(value, ensure_ascii=False, **options)
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def silence_stdout() -> None:
    """After the reader of stdout has gone (EPIPE): point stdout at /dev/null so the final
    flush at exit cannot raise again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def detach_terminal() -> None:
    """After a hang-up (SIGHUP: the terminal or SSH session went away): point stdout and stderr
    at /dev/null where they were the terminal, since writing to a hung-up terminal fails (EIO)
    and would end the command before it saves. Files and pipes are kept."""
    for fd in (1, 2):
        with contextlib.suppress(OSError, ValueError):
            if os.isatty(fd):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, fd)
                os.close(devnull)


@contextlib.contextmanager
def pipe_guard() -> Iterator[None]:
    """End quietly when stdout's reader closes early (`charrnn sample | head`); a stdout that
    refuses the data otherwise (a full disk) is one line naming stdout."""
    try:
        with stdout_errors():
            yield
    except BrokenPipeError:
        silence_stdout()
