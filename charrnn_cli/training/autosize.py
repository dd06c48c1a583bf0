"""`--preset auto`: a model and its training sized for the corpus, the budget and the device.

The choice, in order (docs/quality.md says how it was fitted and what it reached):
1. the budget in characters: `--max-steps` x batch x seq, or `--max-minutes` (10 when neither is
   given) x the speed of a 256x2 LSTM step timed here on the device, scaled to each size by its
   multiply-adds (`flops_per_char`);
2. the size: the largest hidden size whose budget gives it at least CHARS_PER_PARAM characters
   per parameter (the cpu preset's 256x2 at 5 minutes on the 2-core AVX-512 CPU it was tuned
   on, 24,500 chars/s, sits at ~6: the best 5-minute model found there; a faster device gives
   a larger model), and whose parameters do not exceed DATA_PARAMS x the training
   characters (a bigger model only memorises a small text sooner);
3. the regularisers from the pressure that budget puts on the text: epochs (how often each
   character is seen) x parameters per training character (how much of it the model can hold
   by heart). None under 2, then dropout, then weight drop, then more dropout; embedding and
   locked dropout stay off (they cost more than they gave in every run measured);
4. evaluation often enough (about EVALS times a run, on at most EVAL_CHARS characters) that the
   best checkpoint (best.pt) sits near the held-out minimum: early stopping.
The result is the options a user could have given; options given on the command line win.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from charrnn_cli.config import ModelConfig

if TYPE_CHECKING:
    import torch

    from charrnn_cli.config import TrainConfig
    from charrnn_cli.data.encode import Encoded

HIDDEN = (64, 96, 128, 192, 256, 384, 512, 768, 1024)
CHARS_PER_PARAM = 5.0  # characters seen per parameter, at least (see 2. above)
DATA_PARAMS = 20.0  # parameters per training character, at most
DEFAULT_MINUTES = 10.0  # the budget when neither --max-minutes nor --max-steps is given
EVALS = 20  # evaluations in a run, about
FEW_STEPS = 2_400  # CPU minutes that hold fewer steps than this halve the rows a step...
MIN_ROWS = 16  # ...down to this many
EVAL_CHARS = 40_000  # held-out characters an evaluation scores, at most
# the share of the timed step's speed a run reaches: evaluations, checkpoints, the data and the
# start (a plain 256x2 run on an idle 2-core CPU made 72% of the steps the probe's speed allows)
OVERHEAD = 0.72
# (pressure at least, dropout, weight drop, locked dropout, embedding dropout): the last row
# whose pressure (epochs x parameters per training character: how far the model can learn the
# text by heart) the run reaches applies (docs/quality.md, the regularisers one by one)
REGULARISE = (
    (0.0, 0.0, 0.0, 0.0, 0.0),
    (2.0, 0.1, 0.0, 0.0, 0.0),
    (20.0, 0.1, 0.3, 0.0, 0.0),
    (100.0, 0.2, 0.3, 0.0, 0.0),
    (300.0, 0.3, 0.4, 0.0, 0.0),
)


def choose(
    train_chars: int,
    vocab_size: int,
    given: dict[str, Any],
    speed: float | None,
    on_cpu: bool | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The options auto picks for `train_chars` training characters, and why (config.json's
    `auto`). `speed`: characters a second of the reference 256x2 step (None with a step
    budget); `given`: the options on the command line (None: not given); `on_cpu`: whether the
    device is a CPU (None: judged by the speed)."""
    gpu = speed is not None and speed > 200_000
    on_cpu = not gpu if on_cpu is None else on_cpu
    batch, seq = (128, 128) if gpu else (64, 64)
    batch = int(given.get("batch_size") or max(4, min(batch, train_chars // ((seq + 1) * 8))))
    seq = int(given.get("seq_len") or seq)
    steps, minutes = given.get("max_steps"), given.get("max_minutes")
    if steps is None and minutes is None:
        minutes = DEFAULT_MINUTES
    ref = flops_per_char(_shape(256, vocab_size))
    best = HIDDEN[0]
    for hidden in HIDDEN:
        params = flops_per_char(_shape(hidden, vocab_size)) // 2
        seen = _budget(steps, minutes, batch * seq, speed, ref / (2 * params))
        if seen >= CHARS_PER_PARAM * params and params <= DATA_PARAMS * train_chars:
            best = hidden
    hidden = int(given.get("hidden_size") or best)
    params = flops_per_char(_shape(hidden, vocab_size)) // 2
    seen = _budget(steps, minutes, batch * seq, speed, ref / (2 * params))
    timed = minutes is not None and speed and (steps is None or seen < steps * batch * seq)
    shrink = timed and on_cpu and not given.get("batch_size")
    # a CPU trains about as many characters a second at 16 rows as at 64, so where its minutes
    # hold few steps, halving the rows doubles the updates for nothing (docs/quality.md, table
    # F: the whole text at 6.5M characters, 1.4369 at 32 rows, 1.4224 at 16); ~3,000 steps of
    # 64 rows did well (table D); never so few rows that a --max-steps beside the minutes
    # would end the run before the characters it is planned for
    while shrink and batch > MIN_ROWS and seen < FEW_STEPS * batch * seq:
        if steps is not None and steps * max(MIN_ROWS, batch // 2) * seq < seen:
            break
        batch = max(MIN_ROWS, batch // 2)
    epochs = seen / max(1, train_chars)
    pressure = epochs * params / max(1, train_chars)
    row = [r for r in REGULARISE if pressure >= r[0]][-1]
    total_steps = max(1, int(seen // (batch * seq)))
    options = {
        "hidden_size": hidden,
        "embed_size": 128 if hidden >= 512 else 64,
        "layers": 2,
        "dropout": row[1],
        "weight_drop": row[2],
        "locked_dropout": row[3],
        "embed_dropout": row[4],
        "batch_size": batch,
        "seq_len": seq,
        "optimizer": "adamw",
        "lr": 1e-2 if hidden <= 256 else 5e-3 if hidden <= 512 else 2e-3,
        "weight_decay": 0.1,
        "warmup_steps": min(100, max(1, total_steps // 10)),
        "grad_clip": 1.0,
        "epochs": 1000,  # the budget ends the run
        "eval_every": min(500, max(10, total_steps // EVALS)),
        "eval_chars": EVAL_CHARS,
        "max_minutes": minutes,
    }
    why = {
        "train_chars": train_chars,
        "budget": " or ".join(
            ([f"{steps} steps"] if steps is not None else [])
            + ([f"{minutes:g} min"] if minutes is not None else [])
        ),
        "speed_chars_per_s": None if speed is None else round(speed),
        "params": params,
        "chars_seen": int(seen),
        "epochs": round(epochs, 1),
        "pressure": round(pressure, 1),
        "steps": total_steps,
    }
    return options, why


def configure(given: dict[str, Any], data: Encoded, train: TrainConfig) -> dict[str, Any]:
    """The options for `config.build` (auto's, then the ones given) and config.json's `auto`."""
    from charrnn_cli import device
    from charrnn_cli.data.split import split

    train_chars = len(split(data.ids, train.val_fraction)[0])
    speed, on_cpu = None, None
    if given.get("max_steps") is None or given.get("max_minutes") is not None:
        dev = device.pick(train.device)
        speed = measure_speed(dev, device.resolve_precision(train.precision, dev), len(data.vocab))
        on_cpu = dev.type == "cpu"
    options, why = choose(train_chars, len(data.vocab), given, speed, on_cpu)
    merged = {**options, **{k: v for k, v in given.items() if v is not None}}
    return {"options": merged, "auto": {"line": summary(options, why), **why, "chose": options}}


def flops_per_char(cfg: ModelConfig) -> int:
    from charrnn_cli import model

    return model.flops_per_char(cfg)


def _shape(hidden: int, vocab_size: int) -> ModelConfig:
    embed = 128 if hidden >= 512 else 64
    return ModelConfig(vocab_size=max(vocab_size, 2), hidden_size=hidden, embed_size=embed)


def _budget(
    steps: int | None, minutes: float | None, per_step: int, speed: float | None, scale: float
) -> float:
    """Characters the budget trains: the steps', the minutes' at the scaled speed, or the
    fewer of the two when both are given."""
    timed = float(minutes or 0) * 60 * OVERHEAD * float(speed or 0) * scale
    if steps is None:
        return timed
    return float(steps * per_step) if minutes is None or not speed else min(timed, steps * per_step)


def summary(options: dict[str, Any], why: dict[str, Any]) -> str:
    """The one line on stderr: what auto chose, and from what."""
    o = options
    regs = ", ".join(
        f"{k.replace('_', ' ')} {o[k]:g}"
        for k in ("dropout", "weight_drop", "locked_dropout", "embed_dropout")
        if o[k]
    )
    speed = why["speed_chars_per_s"]
    return (
        f"auto: {why['train_chars']:,} training chars, budget {why['budget']}"
        + (f" at {speed:,} chars/s (256x2)" if speed else "")
        + f" -> LSTM {o['layers']}x{o['hidden_size']} ({why['params']:,} weights), "
        f"~{why['steps']:,} steps = {why['epochs']:g} epochs; {regs or 'no dropout'}, "
        f"lr {o['lr']:g}, batch {o['batch_size']}x{o['seq_len']}, eval every {o['eval_every']}"
    )


def measure_speed(dev: torch.device, precision: str, vocab_size: int) -> float:
    """Characters a second of a 256x2 LSTM training step (batch 64 x 64) on `dev`: one
    warm-up step, then the median of three."""
    import torch

    from charrnn_cli.device import autocast_dtype
    from charrnn_cli.model import CharRNN

    gen = torch.Generator().manual_seed(0)  # leaves the global generator (the run's seed) alone
    model = CharRNN(_shape(256, vocab_size)).to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    idx = torch.randint(0, max(vocab_size, 2), (64, 65), generator=gen).to(dev)
    dtype = autocast_dtype(precision)
    times = []
    for _ in range(4):
        start = time.perf_counter()
        with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
            logits, _ = model(idx[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), idx[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 64 * 64 / sorted(times[1:])[1]
