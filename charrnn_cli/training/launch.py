"""`charrnn train --nproc N`: start torchrun's engine on this machine for the user.

It runs torch's elastic launcher (what `torchrun --standalone --nproc-per-node N` runs) in this
process, with a standalone rendezvous on a free local port and no restarts, and each worker runs
`python -m charrnn_cli train` with the same options minus `--nproc`. Users need not know
torchrun's `--` trap. OMP threads are split between the workers unless OMP_NUM_THREADS is set.

The exit code is the job's: 0 when every rank finished; when a rank fails, the launcher stops the
others and ends with the failed rank's code and a line naming it (the rank's own error is
printed above). Ctrl-C, SIGTERM, a hang-up or any other signal of `errors.STOP_SIGNALS` reaches
the launcher, which passes it to every rank; they stop after the same step, rank 0 saves, and
the launcher exits 128 + the signal's number (130, 143, 129...).
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from typing import Any

from charrnn_cli.errors import (
    STOP_SIGNALS,
    CharrnnError,
    Interrupted,
    UsageError,
    signal_exit_code,
    signal_name,
    stop_signals,
)

# the exit code of a rank stopped (and saved) by each signal the ranks answer like Ctrl-C
SIGNAL_CODES = {signal_exit_code(s): signal_name(s) for s in STOP_SIGNALS}


def worker_args(argv: list[str]) -> list[str]:
    """The command line without `--nproc N` / `--nproc=N`."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--nproc":
            skip = True
            continue
        if arg.startswith("--nproc="):
            continue
        out.append(arg)
    return out


def command_line() -> list[str]:
    """This process's `charrnn ... train --nproc N ...` arguments (sys.argv)."""
    argv = list(sys.argv[1:])
    if not any(a == "--nproc" or a.startswith("--nproc=") for a in argv):
        # called in-process (a test, another program) with its own argv: pass argv explicitly
        raise CharrnnError("--nproc: the command line is not in sys.argv; call launch(n, argv)")
    return argv


def launch(nproc: int, argv: list[str] | None = None) -> int:
    """Run `charrnn train` in `nproc` processes under torch's elastic launcher."""
    from charrnn_cli.training.distributed import launched_by_torchrun

    if launched_by_torchrun():
        raise UsageError(
            "--nproc inside torchrun: torchrun already started the processes; drop --nproc"
        )
    args = worker_args(command_line() if argv is None else list(argv))
    if "train" not in args:
        args = ["train", *args]
    if _corpus_is_stdin(args):
        raise UsageError(
            "--corpus - (stdin) cannot be read by several processes: save the text to a file "
            "and pass its path, or train in one process"
        )
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    with tempfile.TemporaryDirectory(prefix="charrnn-launch-") as log_dir:
        return _run(nproc, args, log_dir)


def _corpus_is_stdin(args: list[str]) -> bool:
    for i, a in enumerate(args):
        if a == "--corpus=-" or (a == "--corpus" and i + 1 < len(args) and args[i + 1] == "-"):
            return True
    return False


def _run(nproc: int, args: list[str], log_dir: str) -> int:
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    ns = get_args_parser().parse_args(
        [
            "--standalone",
            "--nproc-per-node",
            str(nproc),
            "--max-restarts",
            "0",
            "--log-dir",
            log_dir,
            "--signals-to-handle",  # passed on to every rank, which stops after its step
            ",".join(signal_name(s) for s in stop_signals() if s in STOP_SIGNALS),
            "-m",
            "--",
            "charrnn_cli",
            *args,
        ]
    )
    try:
        run(ns)
    except ChildFailedError as exc:
        raise _failure(exc.failures) from None
    except SignalException as exc:
        name, code = signal_name(exc.sigval), signal_exit_code(exc.sigval)
        raise Interrupted(
            f"{name}: passed to every rank, which stop after the same step and save; rank 0's "
            f"line above says where, and how to resume (add --nproc {nproc})",
            code,
        ) from None
    return 0


def _failure(failures: dict[int, Any]) -> CharrnnError:
    """One line naming the rank that failed first.

    torch stamps failures to the second and lists them in the order it noticed them; the ranks
    it stopped itself (SIGTERM) are never the cause. Within a second, a rank killed by a signal
    (SIGKILL from the OOM killer, SIGSEGV) comes before one that exited with an error, which is
    most often a peer that lost it in a collective; then torch's order decides."""
    if not failures:
        return CharrnnError("distributed training failed (no rank reported why)")
    order = {r: i for i, r in enumerate(failures)}
    ranks = sorted(
        failures,
        key=lambda r: (
            failures[r].exitcode == -signal.SIGTERM,
            failures[r].timestamp,
            failures[r].exitcode > 0,
            order[r],
        ),
    )
    rank, first = ranks[0], failures[ranks[0]]
    own = {f.exitcode for f in failures.values()} - {-signal.SIGTERM}
    if own and own <= set(SIGNAL_CODES):
        # a signal sent to one rank: the ranks agreed to stop, rank 0 saved, and they left
        # together (the launcher may SIGTERM a rank still exiting after its last collective)
        return Interrupted(
            f"rank {rank} got {SIGNAL_CODES[first.exitcode]}: the ranks stopped after the same "
            "step and rank 0 saved the run (its lines above say where); continue with --resume",
            first.exitcode,
        )
    if first.exitcode > 0:
        how, code = f"exited with code {first.exitcode}", first.exitcode
    else:
        how, code = f"was killed by {first.signal_name()}", 1
    err = CharrnnError(
        f"distributed training failed: rank {rank} {how} (its own error, if it could print one, "
        "is above) and the launcher stopped the other ranks"
    )
    err.exit_code = code
    return err
