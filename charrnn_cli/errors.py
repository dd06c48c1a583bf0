"""The errors a user can cause, each with the exit code the CLI ends with.

Domain code raises these; the CLI turns them into one line on stderr and the exit code. Anything
else that escapes is a bug and shows a traceback with `--debug`.

Exit codes (documented in the README and docs/reliability.md):
  0 success, 1 failure, 2 usage, 3 no network, 4 corrupt or untrusted file,
  5 another process holds the run, 130 interrupted (SIGINT), 143 terminated (SIGTERM), and in
  general 128 + N when training was stopped (and saved) by signal N (129 for SIGHUP).
"""

from __future__ import annotations

import signal

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NETWORK = 3
EXIT_CORRUPT = 4
EXIT_BUSY = 5
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

# The signals that end a process by default and can be caught, which training answers like
# Ctrl-C (finish the step, save, exit 128 + N). Left out: SIGKILL and SIGSTOP (cannot be caught);
# SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS (the process itself is broken: no
# step can be trusted to finish); SIGPIPE and SIGXFSZ (Python ignores them, so a closed pipe or a
# file-size limit is an error where it happens, each with its own message). SIGQUIT (Ctrl-\)
# would dump core, which helps no one here: like Ctrl-C it saves, and a second one quits at once.
STOP_SIGNALS = tuple(
    getattr(signal, name)
    for name in (
        "SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM",
        "SIGVTALRM", "SIGPROF", "SIGXCPU", "SIGPWR", "SIGIO", "SIGSTKFLT",
    )
    if hasattr(signal, name)
)  # fmt: skip


def signal_name(signum: int) -> str:
    """`SIGHUP`, or `SIGRTMIN+3` for a real-time signal (which have no names of their own)."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        low = getattr(signal, "SIGRTMIN", signum)
        return f"SIGRTMIN+{signum - low}" if signum > low else f"signal {signum}"


def stop_signals() -> list[int]:
    """The signals training should answer now: STOP_SIGNALS and the real-time signals (which
    also end a process by default). SIGINT and SIGTERM always (a shell starts a background job
    with SIGINT ignored, yet `kill -INT` should still save); the others only while their action
    is still the default, so `nohup` (SIGHUP ignored) or a profiler's SIGPROF keeps its meaning."""
    found = list(STOP_SIGNALS)
    if hasattr(signal, "SIGRTMIN") and hasattr(signal, "SIGRTMAX"):
        found += range(signal.SIGRTMIN, signal.SIGRTMAX + 1)
    always = (signal.SIGINT, signal.SIGTERM)
    return [s for s in found if s in always or _is_default(s)]


def _is_default(signum: int) -> bool:
    try:
        return signal.getsignal(signum) == signal.SIG_DFL
    except (ValueError, OSError):
        return False


def signal_exit_code(signum: int) -> int:
    """The exit code of a run stopped by signal `signum`: 128 + its number, as a shell reports
    a process the signal ended (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP)."""
    return 128 + int(signum)


class CharrnnError(Exception):
    """A failure the user can act on: the message is the whole story, no traceback needed."""

    exit_code = EXIT_FAILURE


class UsageError(CharrnnError):
    """An option or argument that cannot work (beyond what Typer checks itself)."""

    exit_code = EXIT_USAGE


class NetworkError(CharrnnError):
    """No network, DNS failure, refused connection, HTTP errors after retries."""

    exit_code = EXIT_NETWORK


class CorruptFileError(CharrnnError):
    """A checkpoint, download or config that is damaged, truncated or untrusted."""

    exit_code = EXIT_CORRUPT


class WriteError(CharrnnError):
    """A file could not be written (disk full, size limit, read-only, no permission); whatever
    was there before is unchanged and no temp file is left. `errno` is the refusal's."""

    errno: int | None = None


class BusyError(CharrnnError):
    """Another process holds the lock on a run."""

    exit_code = EXIT_BUSY


class Interrupted(CharrnnError):
    """Training stopped by a signal after saving; the message says how to resume. The CLI says
    it as the plain line it is (a stop, not an error) and exits 128 + the signal's number."""

    def __init__(self, message: str, exit_code: int = EXIT_INTERRUPTED) -> None:
        super().__init__(message)
        self.exit_code = exit_code
