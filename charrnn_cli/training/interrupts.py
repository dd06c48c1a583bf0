"""Stopping training on a signal: every signal that would end the process is answered the way
Ctrl-C is, by finishing the step, saving, and exiting 128 + the signal's number.

`Stopper` installs the handlers around the training loop, which asks `reason()` after each
step; a terminal or a reader of stderr that goes away (EIO, EPIPE) counts as the hang-up or
broken pipe it is. Which signals, and their exit codes, are in errors.py.
"""

from __future__ import annotations

import contextlib
import signal
from typing import Any

from charrnn_cli import console
from charrnn_cli.errors import signal_exit_code, signal_name, stop_signals


class Stopper:
    """Signal handlers for training: every signal that would end the process and can be caught
    (`errors.stop_signals()`: SIGINT, SIGTERM, SIGHUP when the terminal or SSH session goes away,
    SIGQUIT, SIGUSR1/2, SIGALRM, SIGXCPU, ...) asks the loop to finish its step and save; the
    command then exits 128 + the signal's number. A second SIGINT or SIGQUIT quits at once (the
    checkpoint files are always whole). A signal ignored when training starts (`nohup`) stays
    ignored, SIGINT and SIGTERM aside."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def reason(self) -> str | None:
        return self.signal

    def exit_code(self, reason: str | None) -> int | None:
        """128 + the signal's number when training ended because of the signal received."""
        if self.signum is None or reason != self.signal:
            return None
        return signal_exit_code(self.signum)

    def _lost(self, signum: int) -> None:
        """stderr went away (a hung-up terminal, a reader that left): stop and save as for the
        signal that says so, which may not come (or came too late to spare a write)."""
        if self.signal is None:
            self.signal, self.signum = signal_name(signum), signum

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None and signum in (signal.SIGINT, getattr(signal, "SIGQUIT", 0)):
            raise KeyboardInterrupt
        if signum == getattr(signal, "SIGHUP", None):
            console.detach_terminal()  # the terminal is gone: writing to it would fail
        if self.signal is None:
            self.signal, self.signum = signal_name(signum), signum
        with contextlib.suppress(OSError):  # stderr may be closed: saving matters more
            console.log(
                f"[yellow]{signal_name(signum)}[/]: finishing this step and saving "
                "(Ctrl-C again to quit now)"
            )

    def __enter__(self) -> Stopper:
        for sig in stop_signals():
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except (ValueError, OSError):  # not the main thread (tests), or not catchable here
                pass
        console.on_stderr_lost(self._lost)
        return self

    def __exit__(self, *exc: object) -> None:
        console.on_stderr_lost(None)
        for sig, old in self._old.items():
            signal.signal(sig, old)
