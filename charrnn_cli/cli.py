"""The `charrnn` command line: one Typer app, its global options, and the error boundary.

Each subcommand lives in `charrnn_cli/commands/<name>.py` as a thin adapter (parse, call one
domain function, render). This module and those adapters import only the torch-free layer at
the top; torch is imported inside the commands that train, evaluate or sample, so `--help`,
`fetch` and shell completion stay fast.

`main()` is the boundary: a `CharrnnError` becomes one line on stderr and its exit code (a run
a signal stopped and saved, `Interrupted`, a plain line rather than an `error:`), a usage
error one line and exit 2, a closed stdout a quiet exit, and any other exception a one-line
"internal error" (the traceback with `--debug` or `CHARRNN_DEBUG=1`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer
import typer.main

from charrnn_cli import __version__, console
from charrnn_cli.commands import evaluate as eval_cmd
from charrnn_cli.commands import export as export_cmd
from charrnn_cli.commands import fetch as fetch_cmd
from charrnn_cli.commands import info as info_cmd
from charrnn_cli.commands import runs as runs_cmd
from charrnn_cli.commands import sample as sample_cmd
from charrnn_cli.commands import serve as serve_cmd
from charrnn_cli.commands import train as train_cmd
from charrnn_cli.commands import viz as viz_cmd
from charrnn_cli.errors import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CharrnnError,
    Interrupted,
)

if TYPE_CHECKING:
    import click

app = typer.Typer(
    name="charrnn",
    help="Fetch a text corpus, train a character-level RNN, LSTM or GRU on it, "
    "evaluate it, sample new text and see what it learned.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_debug = os.environ.get("CHARRNN_DEBUG", "") not in ("", "0")


def _finite_floats() -> None:
    """Every float option takes finite numbers only. Typer below 0.29 (pyproject.toml bounds
    it there) lets `nan` through a declared range, since nan compares false with both bounds,
    and `inf` through an open-ended one; its range type is wrapped once, here, for every
    command (tests/test_reliability_classes.py walks them)."""
    import math

    from typer._click import types

    if getattr(types.FloatRange.convert, "charrnn_finite", False):
        return
    convert = types.FloatRange.convert

    def finite(self, value, param, ctx):  # click's signature
        number = convert(self, value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number

    finite.charrnn_finite = True  # type: ignore[attr-defined]
    types.FloatRange.convert = finite


_finite_floats()


def _version(value: bool) -> None:
    if value:
        console.out(f"charrnn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help="Show the traceback of an internal error (also CHARRNN_DEBUG=1); before the "
            "command. A mistake of the user's stays one line.",
        ),
    ] = False,
) -> None:
    """Character-level language models: fetch, train, eval, sample."""
    global _debug
    _debug = _debug or debug


app.command("fetch", no_args_is_help=False)(fetch_cmd.fetch)
app.command("train")(train_cmd.train)
app.command("eval")(eval_cmd.evaluate)
app.command("sample")(sample_cmd.sample)
app.command("serve")(serve_cmd.serve)
app.command("export")(export_cmd.export)
app.add_typer(runs_cmd.app, name="runs")
app.command("info")(info_cmd.info)
app.add_typer(viz_cmd.app, name="viz")


@functools.cache
def command() -> click.Command:
    """The click command Typer builds from `app`, built once a process: `app(...)` builds it
    anew at each call (~50 ms reading every command's signature), which a program calling
    `main` again and again (a notebook, the tests) would pay every time."""
    return typer.main.get_command(app)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the app and return its exit code, turning failures into one line on stderr."""
    from typer.exceptions import Abort, TyperException

    args = list(sys.argv[1:] if argv is None else argv)
    _answer_ctrl_c()
    try:
        rv = command().main(args=args, prog_name="charrnn", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except Interrupted as exc:  # training stopped by a signal and saved: no error
        console.stopped(str(exc))
        return exc.exit_code
    except CharrnnError as exc:
        console.error(str(exc))
        return exc.exit_code
    except TyperException as exc:
        # Typer's own checks (unknown option, value out of range): one line, exit 2.
        if type(exc).__name__ == "NoArgsIsHelpError":
            console.err().print(exc.format_message(), markup=False)
            return EXIT_USAGE
        ctx = getattr(exc, "ctx", None)
        where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        if "--debug" in args and "--debug" in exc.format_message():  # a global option
            where = " (it goes before the command: `charrnn --debug COMMAND ...`)"
        console.error(exc.format_message() + where)
        return exc.exit_code if exc.exit_code else EXIT_USAGE
    except BrokenPipeError:
        console.silence_stdout()
        return 0
    except (KeyboardInterrupt, Abort):
        console.error("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if _debug:
            raise
        if isinstance(exc, ValueError) and "null byte" in str(exc):
            # only a program can pass a NUL (no shell can), and no file name may hold one
            console.error("a path or name contains a NUL byte, which no file name may hold")
            return EXIT_USAGE
        message = _resource_message(exc)
        if message is not None:  # a full disk, a read-only folder, no memory: not a bug
            console.error(message)
            return EXIT_FAILURE
        console.error(
            f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)"
        )
        return EXIT_FAILURE


def _answer_ctrl_c() -> None:
    """A shell starts a background job with SIGINT ignored; charrnn answers `kill -INT` the
    way it answers Ctrl-C from its first moment (exit 130; while training, save first), not
    only once training has begun (a signal before would be lost, and training run on)."""
    with contextlib.suppress(ValueError, OSError):  # not the main thread
        if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def _resource_message(exc: BaseException) -> str | None:
    """One line for a failure of the machine rather than of charrnn: a disk that is full or
    read-only, a folder without permission, memory that ran out. None for anything else."""
    from charrnn_cli.storage import paths

    if isinstance(exc, OSError) and paths.is_storage_error(exc):
        reason = paths.STORAGE_ERRNOS[exc.errno or 0]
        where = f": {exc.filename}" if exc.filename else ""
        return f"{reason}{where}: {paths.storage_hint(exc)}"  # CHARRNN_HOME only if it is there
    text = str(exc)
    if isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError)
        and ("can't allocate memory" in text or type(exc).__name__ == "OutOfMemoryError")
    ):
        return (
            "out of memory: the model or batch is too large for this machine; "
            "use a smaller --hidden-size, --layers, --batch-size or --seq-len"
        )
    return None


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
