"""The errors a user can cause, each with the exit code the CLI ends with.

Domain code raises these; the CLI turns them into one line on stderr and the exit code. Anything
else that escapes is a bug and shows a traceback with `--debug`.

Exit codes (documented in the README and docs/reliability.md):
  0 success, 1 failure, 2 usage, 3 no network, 4 corrupt or untrusted file,
  5 another process holds the run, 130 interrupted (SIGINT), 143 terminated (SIGTERM).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NETWORK = 3
EXIT_CORRUPT = 4
EXIT_BUSY = 5
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


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
    was there before is unchanged and no temp file is left."""


class BusyError(CharrnnError):
    """Another process holds the lock on a run."""

    exit_code = EXIT_BUSY


class Interrupted(CharrnnError):
    """Training stopped by a signal after saving; the message says how to resume."""

    def __init__(self, message: str, exit_code: int = EXIT_INTERRUPTED) -> None:
        super().__init__(message)
        self.exit_code = exit_code
