"""Terminal output: data to stdout, everything else to stderr through rich.

stdout carries only data (paths, JSON, samples, tab-separated listings). Progress, logs and
errors go to stderr. rich already drops colour and animation when stderr is not a terminal and
honours `NO_COLOR`; `is_interactive()` tells the commands which form of progress to draw.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


@lru_cache(maxsize=1)
def err() -> Console:
    """The stderr console (built on first use: importing rich costs start-up time)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


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


@contextlib.contextmanager
def pipe_guard() -> Iterator[None]:
    """End quietly when stdout's reader closes early (`charrnn sample | head`)."""
    try:
        yield
    except BrokenPipeError:
        silence_stdout()
