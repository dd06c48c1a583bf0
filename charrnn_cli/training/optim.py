"""The optimizer and its learning-rate schedule.

`make_optimizer` builds Adam, or AdamW with weight decay on the weights that should shrink;
`lr_at` gives the rate of a step: a linear warm-up, then constant or a cosine that ends with the
run, at its last step or when its `--max-minutes` budget runs out.
"""

from __future__ import annotations

import math

import torch

from charrnn_cli.config import TrainConfig
from charrnn_cli.model import CharRNN


def lr_at(cfg: TrainConfig, step: int, total: int, elapsed: float) -> float:
    """The learning rate of step `step` (0-based) of `total`, `elapsed` seconds into the run.

    Linear warm-up, then constant or a cosine to `min_lr_fraction`: the cosine follows whichever
    clock is further along, the steps or the `max_minutes` budget, so a run cut short by its
    budget still ends at the floor."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant":
        return cfg.lr
    done = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    if cfg.max_minutes:
        done = max(done, elapsed / (cfg.max_minutes * 60))
    done = min(1.0, max(0.0, done))
    floor = cfg.min_lr_fraction
    return cfg.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * done)))


def decayed(model: CharRNN) -> list[str]:
    """The names of the parameters AdamW's weight decay shrinks.

    The matrices that multiply activations (the recurrent layers' and the output layer's) are
    where a model stores what it memorised, so they are decayed. Biases are offsets that cannot
    overfit on their own, so they are not. Nor is the embedding: a row gets a gradient only
    when its character occurs, but the decay shrinks every row at every step, so rare
    characters' vectors would fade between their updates. A tied matrix (--tie-weights) is
    the output layer too: softmax sends a gradient to every row at every step, so the fading
    argument does not hold and it is decayed like the output layer it is. (Parameters are
    listed once, so a tied matrix appears only as `embed.weight`.) The learned start state is
    a point in state space, not a weight: decay would drag it towards the zero state the
    model is not trained from.
    """
    head = model.head.weight
    return [
        name
        for name, p in model.named_parameters()
        if p.dim() >= 2 and name != "start" and (p is head or not name.startswith("embed."))
    ]


FUSED_DEVICES = ("cpu", "cuda")  # where torch has a fused Adam kernel


def make_optimizer(model: CharRNN, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam, or AdamW whose decay touches only the `decayed` weights.

    Fused where torch has the kernel: one pass over all parameters instead of a dozen small
    ops each (a default CPU step's optimizer share fell from ~8% to ~3%). Its rounding differs
    from the op-by-op update in the last bits, so runs differ from before at that level
    (held-out loss of the default run: see docs/benchmarks.md's Profile)."""
    fused = {"fused": True} if next(model.parameters()).device.type in FUSED_DEVICES else {}
    if cfg.optimizer == "adamw":
        decay = set(decayed(model))
        params = list(model.named_parameters())
        groups = [
            {"params": [p for n, p in params if n in decay], "weight_decay": cfg.weight_decay},
            {"params": [p for n, p in params if n not in decay], "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(groups, lr=cfg.lr, **fused)
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, **fused)
