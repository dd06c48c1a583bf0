"""The model and training configuration, the presets, and how given options are merged.

Both configs are plain dataclasses with a comment per default. They are stored in every
checkpoint and in the run's `config.json`, so `charrnn sample --run NAME` and `charrnn train
--resume` rebuild everything from the run alone. No torch here: the store and the CLI read
them too.

Precedence when training: the defaults, then `--preset NAME`, then the options given on the
command line. On `--resume` the stored config replaces the first two; the limits (epochs,
max_steps, max_minutes) and the device may be given anew, and any other option given again
must match the stored value.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, get_args

from charrnn_cli.errors import UsageError

# The choices, each named once: the dataclasses, the options of `charrnn train` and the checks
# read these (model.py maps each cell to torch's fused module).
Cell = Literal["lstm", "gru", "rnn"]
Schedule = Literal["constant", "cosine"]
Optimizer = Literal["adam", "adamw"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Preset = Literal["tutorial", "cpu", "gpu", "auto"]
StartState = Literal["learned", "zero"]
Vocab = Literal["chars", "bytes"]  # what a model reads: see vocab.py
CELLS: tuple[str, ...] = get_args(Cell)


@dataclass
class ModelConfig:
    cell: Cell = "lstm"  # lstm | gru | rnn (tanh): the recurrent cell
    # chars | bytes: the model reads characters (one id each) or UTF-8 bytes (256 ids); runs
    # stored before this option read characters
    vocab: Vocab = "chars"
    vocab_size: int = 0  # distinct characters of the corpus; set from the data
    embed_size: int = 64  # width of the character embedding fed to the first layer
    hidden_size: int = 128  # units per recurrent layer (the tutorial's 128)
    layers: int = 2  # stacked recurrent layers (the tutorial's 2)
    dropout: float = 0.0  # dropout between layers and before the output layer
    # AWD-LSTM's regularisers, in training only (0: off, as in runs stored before them):
    weight_drop: float = 0.0  # DropConnect on each layer's hidden-to-hidden weights, per window
    locked_dropout: float = 0.0  # one mask per stream and window, between layers and on output
    embed_dropout: float = 0.0  # whole characters' embedding rows dropped, per window
    tie_weights: bool = False  # share the embedding and output matrices (needs embed == hidden)
    start_state: StartState = "learned"  # what fresh text starts from: a learned state, or zeros


@dataclass
class TrainConfig:
    seq_len: int = 32  # characters per window of truncated backpropagation through time
    batch_size: int = 32  # parallel contiguous streams through the training text
    lr: float = 1e-2  # peak learning rate (the tutorial's Adam 1e-2)
    lr_schedule: Schedule = "cosine"  # or constant; cosine decays to min_lr_fraction by the end
    warmup_steps: int = 100  # linear warm-up from 0 to lr over these steps
    min_lr_fraction: float = 0.1  # the cosine's floor, as a fraction of lr
    optimizer: Optimizer = "adam"  # adam | adamw
    weight_decay: float = 0.0  # decoupled weight decay (adamw only)
    # at each window, the chance that a stream starts again from the start state: so the model
    # keeps learning to begin from it (1%: the newline after "ROMEO:" at P 0.998, held-out +0.003)
    restart_prob: float = 0.01
    grad_clip: float = 5.0  # clip the gradient's global norm to this (0 turns it off)
    epochs: int = 3  # passes over the training text (the tutorial's 3)
    max_steps: int | None = None  # stop after this many optimizer steps (counted from the start)
    max_minutes: float | None = None  # wall-clock budget; the cosine ends when it does
    val_fraction: float = 0.05  # the last part of the corpus held out (the tutorial's 5%)
    eval_every: int = 500  # evaluate the held-out text every N steps (and at each epoch end)
    # an evaluation scores this many characters from the start of the held-out tail, the same
    # piece each time (0: all of it): 2-7 s for the default model on one CPU core, and more
    # than Tiny Shakespeare's whole tail at --val-fraction up to 0.2, whose figures are those
    # of the whole tail as before
    eval_chars: int = 250_000
    save_every: float = 5.0  # also checkpoint every N minutes
    random_seed: int = 0  # seeds weights, dropout and sampling: same seed, same run on CPU
    # auto | fp32 | bf16 | fp16 (autocast; fp16 on GPUs only). auto: bf16 on a CPU that computes
    # it in hardware (AMX, AVX-512 BF16), where the LSTM kernels run 1.3-1.9x faster to the same
    # held-out loss; fp32 on every other CPU and on GPUs (see device.resolve_precision)
    precision: Precision = "auto"
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    # a short sample drawn from the model being trained, shown under the evaluation's line and
    # kept in the run's samples.jsonl: None at each held-out evaluation, N every N steps, 0 never
    sample_every: int | None = None
    sample_len: int = 200  # characters a sample draws (after its seed text): about three lines
    # text each sample starts from ("": the run's start state alone, a first character drawn
    # from the corpus's character frequencies)
    sample_seed: str = ""
    # moderate: sharper than the model's own distribution (1), less repetitive than greedy (0)
    sample_temperature: float = 0.8


# The range of every numeric field, (least, most), declared once and finite: the options of
# `charrnn train` take them as Typer's min and max, and readback.py checks config.json and the
# config in a checkpoint against them. Cross-field rules are `check`'s.
INT_MAX = 2**63 - 1  # the largest whole number any option takes: torch's and numpy's int64
BOUNDS: dict[str, tuple[int | float, int | float]] = {
    "vocab_size": (0, 2**32),
    "embed_size": (1, 16384),
    "hidden_size": (1, 16384),
    "layers": (1, 16),
    "dropout": (0.0, 0.95),
    "weight_drop": (0.0, 0.95),
    "locked_dropout": (0.0, 0.95),
    "embed_dropout": (0.0, 0.95),
    "seq_len": (1, 100_000),
    "batch_size": (1, 100_000),
    "lr": (0.0, 10.0),
    "warmup_steps": (0, INT_MAX),
    "min_lr_fraction": (0.0, 1.0),
    "weight_decay": (0.0, 100.0),
    "restart_prob": (0.0, 1.0),
    "grad_clip": (0.0, 1e9),
    "epochs": (1, INT_MAX),
    "max_steps": (1, INT_MAX),
    "max_minutes": (0.0, 1e9),
    "val_fraction": (0.0, 1.0),
    "eval_every": (1, INT_MAX),
    "eval_chars": (0, INT_MAX),
    "save_every": (0.0, 1e9),
    "random_seed": (0, INT_MAX),
    "sample_every": (0, INT_MAX),
    "sample_len": (1, 2000),  # a sample's line in samples.jsonl stays within readback.MAX_LINE
    "sample_temperature": (0.0, 100.0),
}
SAMPLE_SEED_MAX = 1000  # characters of --sample-seed (a line of samples.jsonl holds it)


def limits(key: str) -> dict[str, int | float]:
    """A field's bounds as Typer's `min=` and `max=` (`**limits("layers")`)."""
    low, high = BOUNDS[key]
    return {"min": low, "max": high}


# Options that may change on --resume; they do not alter what a step computes (the precision
# rounds the products, never a stored weight: a bf16 run goes on in fp32 where bf16 is absent).
# In the order the refusal names them.
RESUMABLE_ANEW = (
    "epochs", "max_steps", "max_minutes", "device", "precision", "eval_every", "save_every",
)  # fmt: skip
# what the samples drawn during training look like: they never change what a step computes
SAMPLE_KEYS = ("sample_every", "sample_len", "sample_seed", "sample_temperature")

PRESETS: dict[str, dict[str, Any]] = {
    # The Lux.jl tutorial's choices: LSTM 2x128, seq 32, batch 32, Adam 1e-2, 3 epochs.
    "tutorial": {},
    # The best 5-minute model we found for a 2-core CPU. On Tiny Shakespeare (last 10% held
    # out), 2026-12-03 on 2 AVX-512 cores (~1,800-1,900 steps in 5 minutes): 1.4394 nats/char;
    # the old lr 7e-3, dropout 0.15, eval every 250 gave 1.4595, dropout 0.1 alone 1.4551, lr
    # 1e-2 alone 1.4461. Batch 32 reached 1.43 in 5 minutes but 1.49 at 1,500 steps (half the
    # text seen), so the batch stays 64. 1,500 steps: 1.4547 (was 1.4674). (Measured with a ~3%
    # faster step since taken back; see docs/benchmarks.md.)
    "cpu": {
        "hidden_size": 256,
        "embed_size": 64,
        "layers": 2,
        "dropout": 0.1,
        "batch_size": 64,
        "seq_len": 64,
        "optimizer": "adamw",
        "lr": 1e-2,
        "weight_decay": 0.1,
        "warmup_steps": 100,
        "grad_clip": 1.0,
        "epochs": 100,
        "eval_every": 500,  # an evaluation of the 10% tail is ~1.5 s of a 5-minute budget
    },
    # One GPU: measured on an H200 with Tiny Shakespeare, 5 minutes in bf16 reach 1.43 nats
    # held-out (a 3x1024 LSTM overfits sooner and ends at 1.46). Dropout does the heavy lifting.
    "gpu": {
        "hidden_size": 1024,
        "embed_size": 128,
        "layers": 2,
        "dropout": 0.5,
        "batch_size": 128,
        "seq_len": 128,
        "optimizer": "adamw",
        "lr": 2e-3,
        "weight_decay": 0.1,
        "warmup_steps": 200,
        "grad_clip": 1.0,
        "epochs": 100,
        "eval_every": 250,
        "precision": "bf16",
    },
    # Sized for the corpus, the budget and the device when the run starts: training/autosize.py
    "auto": {},
}

# The model fields that only shape training (a fine-tuned run chooses its own, lineage.py)
REGULARISERS = ("dropout", "weight_drop", "locked_dropout", "embed_dropout")
MODEL_KEYS = {f.name for f in fields(ModelConfig)} - {"vocab_size"}  # the data sets vocab_size
TRAIN_KEYS = {f.name for f in fields(TrainConfig)}
OPTION_KEYS = MODEL_KEYS | TRAIN_KEYS  # one `charrnn train` option each, by the same name


def flag(key: str) -> str:
    """The command-line option of a config field: `max_steps` -> `--max-steps`."""
    return "--" + key.replace("_", "-")


def build(given: dict[str, Any], preset: str | None = None) -> tuple[ModelConfig, TrainConfig]:
    """Defaults, then the preset, then the options given (None means not given)."""
    values: dict[str, Any] = dict(PRESETS[preset or "tutorial"])
    values.update({k: v for k, v in given.items() if v is not None})
    unknown = set(values) - MODEL_KEYS - TRAIN_KEYS
    if unknown:
        raise ValueError(f"unknown options {sorted(unknown)}")
    model = ModelConfig(**{k: v for k, v in values.items() if k in MODEL_KEYS})
    train = TrainConfig(**{k: v for k, v in values.items() if k in TRAIN_KEYS})
    check(model, train)
    return model, train


def merge_resume(
    stored_model: ModelConfig, stored_train: TrainConfig, given: dict[str, Any]
) -> tuple[ModelConfig, TrainConfig]:
    """The stored configs with the limits given anew; any other option must match. A stored
    precision not given anew is kept as the run's wish: the trainer falls back to fp32 where
    the device lacks it (device.resolve_precision's `fallback`), so fp16 on a CPU is no error."""
    model, train = dataclasses.replace(stored_model), dataclasses.replace(stored_train)
    for key, value in given.items():
        if value is None:
            continue
        if key in RESUMABLE_ANEW or key in SAMPLE_KEYS:
            setattr(train, key, value)
            continue
        target = model if key in MODEL_KEYS else train
        stored = getattr(target, key)
        if stored != value:
            *most, last = (flag(k) for k in RESUMABLE_ANEW)
            raise UsageError(
                f"{flag(key)} {value} differs from the run's stored {stored}; on --resume only "
                f"{', '.join(most)}, {last} and the --sample-* options may change (start a new "
                "--run to change it)"
            )
    kept = given.get("precision") is None
    check(model, dataclasses.replace(train, precision="auto") if kept else train)
    return model, train


def check(model: ModelConfig, train: TrainConfig) -> None:
    """Cross-option checks Typer cannot express on a single option."""
    if model.cell not in CELLS:
        raise UsageError(f"--cell must be one of {', '.join(CELLS)}")
    if model.tie_weights and model.embed_size != model.hidden_size:
        raise UsageError("--tie-weights needs --embed-size equal to --hidden-size")
    if train.lr <= 0:
        raise UsageError(f"--lr must be positive, got {train.lr:g} (a zero rate learns nothing)")
    if not 0.0 < train.val_fraction < 1.0:
        raise UsageError(f"--val-fraction must be inside (0, 1), got {train.val_fraction}")
    if train.max_minutes is not None and train.max_minutes <= 0:
        raise UsageError(f"--max-minutes must be positive, got {train.max_minutes}")
    if train.eval_chars < 0 or train.eval_chars == 1:  # one character has no next to score
        raise UsageError(
            f"--eval-chars must be 0 (all) or at least 2 (a character and the next one to "
            f"predict), got {train.eval_chars}"
        )
    if train.max_steps is not None and train.max_steps < 1:
        raise UsageError(f"--max-steps must be at least 1, got {train.max_steps}")
    if train.precision == "fp16" and train.device == "cpu":
        raise UsageError("--precision fp16 needs a GPU; use bf16 or fp32 on the CPU")
    _check_sample_seed(train.sample_seed)


def _check_sample_seed(seed: str) -> None:
    if len(seed) > SAMPLE_SEED_MAX:
        raise UsageError(
            f"--sample-seed has {len(seed):,} characters; a sample's seed takes at most "
            f"{SAMPLE_SEED_MAX:,}"
        )
    if any("\ud800" <= c <= "\udfff" for c in seed):  # argv bytes that were not UTF-8
        raise UsageError("--sample-seed is not UTF-8 text")


def to_dict(model: ModelConfig, train: TrainConfig) -> dict[str, Any]:
    """Both configs as config.json and the checkpoints store them."""
    return {"model": asdict(model), "train": asdict(train)}


def from_dict(data: dict[str, Any]) -> tuple[ModelConfig, TrainConfig]:
    """Rebuild the configs from a stored dict, ignoring keys this version does not know."""
    m = {k: v for k, v in data["model"].items() if k in MODEL_KEYS | {"vocab_size"}}
    t = {k: v for k, v in data["train"].items() if k in TRAIN_KEYS}
    # runs from before start states began from zeros and never restarted: they stay so
    m.setdefault("start_state", "zero")
    t.setdefault("restart_prob", 0.0)
    return ModelConfig(**m), TrainConfig(**t)
