"""`charrnn train`: parse the options, call `train_run` (shared with the Python API), render.

Every option defaults to None so that the command can tell which ones were given: those
override the preset, and on `--resume` they are checked against the stored config. Progress
goes to stderr (a rich bar on a terminal, a plain line every few seconds otherwise); the run's
folder is printed on stdout at the end. SIGINT, SIGTERM, SIGHUP and every other signal that would
end the process ask the loop to finish its step and save (exit 128 + the signal's number); a
second SIGINT exits at once (the checkpoint files are always whole).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from charrnn_cli import config, console
from charrnn_cli.commands.options import (
    PANEL_RUN,
    InitFromOption,
    NewRunOption,
    TrainDeviceOption,
    escaped,
    open_range,
)
from charrnn_cli.commands.train_render import render
from charrnn_cli.commands.train_run import train_run
from charrnn_cli.commands.train_samples import (
    SampleEveryOption,
    SampleLenOption,
    SampleSeedOption,
    SampleTemperatureOption,
)
from charrnn_cli.errors import CharrnnError, Interrupted
from charrnn_cli.storage import store

if TYPE_CHECKING:
    pass

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
            callback=open_range(*config.BOUNDS["val_fraction"]),
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
    sample_every: SampleEveryOption = None,
    sample_len: SampleLenOption = None,
    sample_seed: SampleSeedOption = None,
    sample_temperature: SampleTemperatureOption = None,
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
    try:
        name = train_run(corpus, run, resume, preset, init_from, given, render=render, quiet=quiet)
    except Interrupted as stop:
        if getattr(stop, "run", None):  # a stopped run was saved: its folder, as at the end
            _print_folder(stop.run, stopped=True)
        raise
    if name is not None:
        _print_folder(name, stopped=False)


def _print_folder(name: str, *, stopped: bool) -> None:
    """The run's folder on stdout; after a stop, a stdout that cannot take it (a reader or a
    terminal that went away with the signal) must not change the exit code, 128 + N."""
    try:
        console.out(str(store.run_dir(name)))
    except (OSError, CharrnnError):
        if not stopped:
            raise
        console.silence_stdout()
