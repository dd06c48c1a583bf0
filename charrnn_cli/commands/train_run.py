"""Training as `charrnn train` runs it, for the command and for the Python API alike.

`train_run` takes the options once parsed (the config's, each by its field's name, None when
not given) and does the rest: prepares the job (corpus, name, configs), takes the run's lock,
installs the signal handlers for the call (`interrupts.Stopper`), drives the training loop and
hands its records to `render`. A signal stops the loop after its step, saves, and raises
`Interrupted` (exit 128 + the signal's number); `on_event` hears every record and returning
False from it stops training the way `--max-steps` does (a final evaluation and save).
Torch-free at import: the torch layer is imported inside the call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from charrnn_cli import console
from charrnn_cli.errors import Interrupted
from charrnn_cli.storage import store
from charrnn_cli.training import lineage
from charrnn_cli.training.interrupts import Stopper

if TYPE_CHECKING:
    from charrnn_cli.training.train import Event

Render = Callable[[Iterable["Event"], bool], "Event | None"]
OnEvent = Callable[["Event"], Any]
STOPPED = "stopped"  # the end record's reason when `on_event` asked training to stop


def train_run(
    corpus: str | None,
    run: str | None,
    resume: bool,
    preset: str | None,
    init_from: str | None,
    given: dict[str, Any],
    *,
    render: Render,
    quiet: bool = False,
    on_event: OnEvent | None = None,
) -> str | None:
    """Train; the run's name (None on a data-parallel worker that is not the main process).
    Raises CharrnnError for what the user must fix, Interrupted once a signal stopped it."""
    from charrnn_cli.progress import Reporter
    from charrnn_cli.training.distributed import from_env
    from charrnn_cli.training.jobs import prepare
    from charrnn_cli.training.train import train as run_training

    comm = from_env(given.get("device") or "auto")
    try:
        with Reporter("encoding the corpus", quiet=quiet or not comm.is_main) as progress:
            job = prepare(corpus, run, resume, preset, given, comm, progress, init_from)
        if job.parent is not None and comm.is_main and not quiet:  # markup off: '[' may be added
            console.err().print(lineage.describe(job.parent), markup=False, soft_wrap=True)
        if job.auto is not None and comm.is_main and not quiet:  # what --preset auto chose
            console.err().print(job.auto["line"], markup=False, soft_wrap=True)
        stopper = Stopper()
        asked = _Callback(on_event)
        held = store.lock(job.name, pick=run is None and not resume)
        with held if comm.is_main else contextlib.nullcontext(job.name) as name, stopper:
            job.name = str(comm.broadcast_object(name))  # the name charrnn picked may be taken
            records = run_training(job, should_stop=asked.or_(stopper.reason), comm=comm)
            last = render(asked.watch(records), quiet or not comm.is_main)
    finally:
        comm.close()
    code = stopper.exit_code(last.reason if last is not None else None)
    if last is not None and code is not None:
        stop = Interrupted(  # a stop, not an error: the boundary says it as a plain line
            f"{last.reason}: stopped at step {last.step} and saved; continue with "
            f"`charrnn train --run {job.name} --resume`",
            code,
        )
        stop.run = job.name if comm.is_main else None  # type: ignore[attr-defined]
        raise stop
    return job.name if comm.is_main else None


class _Callback:
    """`on_event` called with each record before it is rendered; False asks for a stop."""

    def __init__(self, on_event: OnEvent | None) -> None:
        self.on_event = on_event
        self.stop: str | None = None

    def or_(self, should_stop: Callable[[], str | None]) -> Callable[[], str | None]:
        return lambda: should_stop() or self.stop

    def watch(self, records: Iterable[Event]) -> Iterator[Event]:
        for rec in records:
            if self.on_event is not None and self.on_event(rec) is False:
                self.stop = self.stop or STOPPED
            yield rec
