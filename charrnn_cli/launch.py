"""`charrnn train --nproc N`: start torchrun's engine on this machine for the user.

It runs torch's elastic launcher (what `torchrun --standalone --nproc-per-node N` runs) with a
standalone rendezvous on a free local port, and each worker runs `python -m charrnn_cli train`
with the same options minus `--nproc`. Users need not know torchrun's `--` trap. The exit code
is the job's: 0 when every rank finished, otherwise the first failure's.
"""

from __future__ import annotations

import os
import sys

from charrnn_cli.errors import CharrnnError


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


def launch(nproc: int, argv: list[str] | None = None) -> int:
    """Run `charrnn train` in `nproc` processes under torch's elastic launcher."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    args = worker_args(list(sys.argv[1:] if argv is None else argv))
    if args and args[0] == "train":
        args = args[1:]
    parser = get_args_parser()
    ns = parser.parse_args(
        [
            "--standalone",
            "--nproc-per-node",
            str(nproc),
            "--max-restarts",
            "0",
            "-m",
            "charrnn_cli",
            "--",
            "train",
            *args,
        ]  # fmt: skip
    )
    if ns.training_script_args and ns.training_script_args[0] == "--":
        ns.training_script_args = ns.training_script_args[1:]
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    try:
        run(ns)
    except ChildFailedError as exc:
        failures = exc.failures
        first = min(failures.values(), key=lambda f: f.timestamp) if failures else None
        code = first.exitcode if first is not None and first.exitcode > 0 else 1
        raise CharrnnError(
            f"distributed training failed: rank {first.local_rank if first else '?'} exited "
            f"with code {code} (its error is printed above)"
        ) from None
    return 0
