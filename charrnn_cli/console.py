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

    err().print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


def error(message: str) -> None:
    """The one line a user's mistake gets on stderr."""
    from rich.markup import escape

    err().print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def out(text: str, end: str = "\n") -> None:
    """Data on stdout, flushed, so pipelines see it at once."""
    sys.stdout.write(text + end)
    sys.stdout.flush()


def out_json(value: Any) -> None:
    """One JSON document on stdout."""
    out(json.dumps(value, ensure_ascii=False))


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
    """End quietly when stdout's reader closes early (`charrnn sample | head`)."""
    try:
        yield
    except BrokenPipeError:
        silence_stdout()
