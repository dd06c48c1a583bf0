"""`charrnn train`: parse the options, resolve corpus and run, call `train.train`, render progress.

Every option defaults to None so that the command can tell which ones were given: those
override the preset, and on `--resume` they are checked against the stored config. Progress
goes to stderr (a rich bar on a terminal, a plain line every few seconds otherwise); the run's
folder is printed on stdout at the end. SIGINT, SIGTERM, SIGHUP and every other signal that would
end the process ask the loop to finish its step and save (exit 128 + the signal's number); a
second SIGINT exits at once (the checkpoint files are always whole).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from charrnn_cli import config, console
from charrnn_cli.commands.options import (
    PANEL_RUN,
    InitFromOption,
    NewRunOption,
    TrainDeviceOption,
    escaped,
)
from charrnn_cli.errors import Interrupted
from charrnn_cli.runs import store
from charrnn_cli.training import lineage
from charrnn_cli.training.interrupts import Stopper

if TYPE_CHECKING:
    from rich.console import Console

    from charrnn_cli.training.train import Event

PANEL_DATA = "Data"
PANEL_MODEL = "Model"
PANEL_OPT = "Optimisation"


def _opt(help: str, panel: str, param_decls: list[str] | None = None, **kw: Any) -> Any:
    """An option of the help panel `panel`; a flag names itself (`param_decls=["--quiet"]`), so
    it has no `--no-` twin."""
    decls = param_decls or []
    return typer.Option(*decls, help=escaped(help), rich_help_panel=panel, show_default=False, **kw)


def train(
    corpus: Annotated[
        str | None,
        _opt(
            "Corpus: a registry or cached NAME, a PATH, or - for stdin [tinyshakespeare].",
            PANEL_DATA,
        ),
    ] = None,
    run: NewRunOption = None,
    resume: Annotated[
        bool, _opt("Continue --run from its last checkpoint.", PANEL_RUN, param_decls=["--resume"])
    ] = False,
    init_from: InitFromOption = None,
    preset: Annotated[
        config.Preset | None,
        _opt(
            "A set of options: tutorial (default), cpu (best in minutes on a small CPU), gpu, "
            "auto (sized for the corpus, the budget and the device).",
            PANEL_RUN,
        ),
    ] = None,
    cell: Annotated[config.Cell | None, _opt("Recurrent cell [lstm].", PANEL_MODEL)] = None,
    vocab: Annotated[
        config.Vocab | None,
        _opt("Read characters, or UTF-8 bytes (256 ids, bits/byte) [chars].", PANEL_MODEL),
    ] = None,
    layers: Annotated[
        int | None, _opt("Recurrent layers [2].", PANEL_MODEL, **config.limits("layers"))
    ] = None,
    hidden_size: Annotated[
        int | None, _opt("Units per layer [128].", PANEL_MODEL, **config.limits("hidden_size"))
    ] = None,
    embed_size: Annotated[
        int | None, _opt("Embedding width [64].", PANEL_MODEL, **config.limits("embed_size"))
    ] = None,
    dropout: Annotated[
        float | None, _opt("Dropout between layers [0].", PANEL_MODEL, **config.limits("dropout"))
    ] = None,
    weight_drop: Annotated[
        float | None,
        _opt(
            "DropConnect on hidden-to-hidden weights [0].",
            PANEL_MODEL,
            **config.limits("weight_drop"),
        ),
    ] = None,
    locked_dropout: Annotated[
        float | None,
        _opt(
            "Dropout with one mask per sequence, between layers and on the output [0].",
            PANEL_MODEL,
            **config.limits("locked_dropout"),
        ),
    ] = None,
    embed_dropout: Annotated[
        float | None,
        _opt(
            "Drop whole characters' embeddings [0].", PANEL_MODEL, **config.limits("embed_dropout")
        ),
    ] = None,
    tie_weights: Annotated[
        bool | None, _opt("Share embedding and output weights (embed = hidden).", PANEL_MODEL)
    ] = None,
    start_state: Annotated[
        config.StartState | None,
        _opt("What fresh text starts from: a learned state, or zeros [learned].", PANEL_MODEL),
    ] = None,
    seq_len: Annotated[
        int | None, _opt("Characters per BPTT window [32].", PANEL_DATA, **config.limits("seq_len"))
    ] = None,
    batch_size: Annotated[
        int | None, _opt("Parallel streams [32].", PANEL_DATA, **config.limits("batch_size"))
    ] = None,
    val_fraction: Annotated[
        float | None,
        _opt(
            "Held-out tail of the corpus, inside (0, 1) [0.05].",
            PANEL_DATA,
            **config.limits("val_fraction"),
        ),
    ] = None,
    lr: Annotated[
        float | None, _opt("Peak learning rate [0.01].", PANEL_OPT, **config.limits("lr"))
    ] = None,
    lr_schedule: Annotated[
        config.Schedule | None, _opt("Learning-rate schedule [cosine].", PANEL_OPT)
    ] = None,
    warmup_steps: Annotated[
        int | None, _opt("Linear warm-up steps [100].", PANEL_OPT, **config.limits("warmup_steps"))
    ] = None,
    min_lr_fraction: Annotated[
        float | None,
        _opt(
            "The cosine's floor, a fraction of --lr [0.1].",
            PANEL_OPT,
            **config.limits("min_lr_fraction"),
        ),
    ] = None,
    optimizer: Annotated[config.Optimizer | None, _opt("Optimizer [adam].", PANEL_OPT)] = None,
    weight_decay: Annotated[
        float | None, _opt("AdamW weight decay [0].", PANEL_OPT, **config.limits("weight_decay"))
    ] = None,
    restart_prob: Annotated[
        float | None,
        _opt(
            "Chance a stream restarts from the start state at a window [0.01].",
            PANEL_OPT,
            **config.limits("restart_prob"),
        ),
    ] = None,
    grad_clip: Annotated[
        float | None,
        _opt("Clip the gradient norm (0: off) [5].", PANEL_OPT, **config.limits("grad_clip")),
    ] = None,
    epochs: Annotated[
        int | None, _opt("Passes over the text [3].", PANEL_RUN, **config.limits("epochs"))
    ] = None,
    max_steps: Annotated[
        int | None, _opt("Stop after N steps in all.", PANEL_RUN, **config.limits("max_steps"))
    ] = None,
    max_minutes: Annotated[
        float | None,
        _opt(
            "Wall-clock budget; the cosine ends with it.", PANEL_RUN, **config.limits("max_minutes")
        ),
    ] = None,
    eval_every: Annotated[
        int | None, _opt("Evaluate every N steps [500].", PANEL_RUN, **config.limits("eval_every"))
    ] = None,
    eval_chars: Annotated[
        int | None,
        _opt(
            "Held-out characters an evaluation scores; 0: all [250000].",
            PANEL_RUN,
            **config.limits("eval_chars"),
        ),
    ] = None,
    save_every: Annotated[
        float | None,
        _opt("Checkpoint every N minutes [5].", PANEL_RUN, **config.limits("save_every")),
    ] = None,
    random_seed: Annotated[
        int | None,
        _opt("Seed: same seed, same run on CPU [0].", PANEL_RUN, **config.limits("random_seed")),
    ] = None,
    device: TrainDeviceOption = None,
    precision: Annotated[
        config.Precision | None,
        _opt("Autocast precision; auto: bf16 on CPUs with AMX or AVX-512 BF16 [auto].", PANEL_RUN),
    ] = None,
    nproc: Annotated[
        int | None,
        _opt(
            "Data-parallel processes on this machine (starts torchrun's engine).",
            PANEL_RUN,
            min=1,
            max=1024,
        ),
    ] = None,
    quiet: Annotated[
        bool, _opt("No progress, only errors.", PANEL_RUN, param_decls=["--quiet"])
    ] = False,
) -> None:
    """Train a character-level RNN, LSTM or GRU; print the run's folder when done."""
    # the config's options, each by its field's name (None: not given); first, while the
    # locals are the parameters alone
    given = {key: value for key, value in locals().items() if key in config.OPTION_KEYS}
    if nproc is not None and nproc > 1:
        from charrnn_cli.training.launch import launch

        raise typer.Exit(launch(nproc))
    from charrnn_cli.progress import Reporter
    from charrnn_cli.training.distributed import from_env
    from charrnn_cli.training.jobs import prepare
    from charrnn_cli.training.train import train as run_training

    comm = from_env(device or "auto")
    try:
        with Reporter("encoding the corpus", quiet=quiet or not comm.is_main) as progress:
            job = prepare(corpus, run, resume, preset, given, comm, progress, init_from)
        if job.parent is not None and comm.is_main and not quiet:  # markup off: '[' may be added
            console.err().print(lineage.describe(job.parent), markup=False, soft_wrap=True)
        if job.auto is not None and comm.is_main and not quiet:  # what --preset auto chose
            console.err().print(job.auto["line"], markup=False, soft_wrap=True)
        stopper = Stopper()
        held = store.lock(job.name, pick=run is None and not resume)
        with held if comm.is_main else contextlib.nullcontext(job.name) as name, stopper:
            job.name = str(comm.broadcast_object(name))  # the name charrnn picked may be taken
            records = run_training(job, should_stop=stopper.reason, comm=comm)
            last = _render(records, quiet or not comm.is_main)
    finally:
        comm.close()
    code = stopper.exit_code(last.reason if last is not None else None)
    if last is not None and code is not None:
        raise Interrupted(
            f"{last.reason}: stopped at step {last.step} and saved; continue with "
            f"`charrnn train --run {job.name} --resume`",
            code,
        )
    if comm.is_main:
        console.out(str(store.run_dir(job.name)))


def _render(records: Iterable[Event], quiet: bool) -> Event | None:
    """Draw the records on stderr; return the last one."""
    last = None
    if quiet:
        for rec in records:
            last = rec
        return last
    if console.is_interactive():
        return _render_live(records)
    next_plain = 0.0
    for rec in records:
        last = rec
        if rec.kind == "start":
            _start_line(rec)
        elif rec.kind == "step" and (time.monotonic() >= next_plain or rec.step == rec.total_steps):
            next_plain = time.monotonic() + 5.0
            console.log(_step_text(rec))
        elif rec.kind == "eval":
            console.log(_eval_text(rec))
        elif rec.kind == "skip":
            console.warn(
                f"step {rec.step}: loss not finite, step skipped ({rec.info['run']} in a row)"
            )
        elif rec.kind == "end":
            console.log(_end_text(rec))
    return last


def _render_live(records: Iterable[Event]) -> Event | None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    last = None
    columns = (
        TextColumn("[bold]train[/]"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[stats]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console.err(), transient=False) as bar:
        task = None
        for rec in records:
            last = rec
            if rec.kind == "start":
                _start_line(rec, bar.console)
                task = bar.add_task("train", total=rec.total_steps, completed=rec.step, stats="")
            elif rec.kind == "step" and task is not None:
                bar.update(task, completed=rec.step, stats=_step_text(rec, short=True))
            elif rec.kind == "eval":
                bar.console.print(_eval_text(rec))
            elif rec.kind == "skip":
                bar.console.print(f"[yellow]step {rec.step}: loss not finite, skipped[/]")
            elif rec.kind == "end":
                if task is not None:
                    bar.update(task, completed=rec.step)
                bar.console.print(_end_text(rec))
    return last


def _start_line(rec: Event, where: Console | None = None) -> None:
    i = rec.info
    text = (
        f"{'resuming' if i['resumed'] else 'training'} on {i['device']}"
        + (f" x {i['world_size']} processes" if i["world_size"] > 1 else "")
        + (f" in {i['precision']}" if i.get("precision", "fp32") != "fp32" else "")
        + f": {i['parameters']:,} parameters, {i['vocab_size']} characters, "
        f"{i['train_chars']:,} train / {i['val_chars']:,} held out, "
        f"{i['steps_per_epoch']} steps/epoch"
    )
    (where or console.err()).print(text, highlight=False, soft_wrap=True)


def _step_text(rec: Event, short: bool = False) -> str:
    cps = f"{rec.chars_per_sec:,.0f} ch/s" if rec.chars_per_sec else "-"
    loss = f"{rec.train_loss:.3f}" if rec.train_loss is not None else "-"
    if short:
        return f"epoch {rec.epoch + 1} loss {loss} {cps}"
    eta = f"{rec.eta_s / 60:.1f} min left" if rec.eta_s is not None else ""
    return (
        f"epoch {rec.epoch + 1} step {rec.step}/{rec.total_steps} loss {loss} "
        f"lr {rec.lr:.2e} {cps} {eta}"
    )


def _eval_text(rec: Event) -> str:
    star = " [green](best)[/]" if rec.best else ""
    return (
        f"step {rec.step}: held-out {rec.val_loss:.4f} nats/char, {rec.val_bpc:.4f} bits/char{star}"
    )


def _end_text(rec: Event) -> str:
    why = {"done": "finished", "budget": "time budget reached"}.get(rec.reason, rec.reason)
    return (
        f"{why} at step {rec.step} after {rec.elapsed_s / 60:.1f} min; "
        f"best held-out {rec.val_loss:.4f} nats/char ({rec.val_bpc:.3f} bits)"
    )
