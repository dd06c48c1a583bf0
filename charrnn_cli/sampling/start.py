"""Where sampling streams start: the start state, a seed primed from it, and what streams hand
back.

`start_state` is the one place that says where a fresh sample starts; `prime` feeds text from
there in one model call (a long seed in bounded memory). `Start`, `LineEnds` and `Chunk` are the
shapes the engines (streams.py) and their lanes (lanes.py) share, so neither imports the other's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from charrnn_cli.model import CharRNN, State

Chunk = tuple[np.ndarray, np.ndarray | None]  # ids (T, B); line ends (T, B) or None


def start_state(model: CharRNN, batch: int = 1) -> State:
    """The state every fresh sample starts from, for `batch` streams: (L, B, H), an (h, c) pair
    for the LSTM, on the model's device. The model's learned start state (the state training
    restarts streams from), or zeros for a zero-start run or one from before start states."""
    learned = model.start_state(batch)
    if isinstance(learned, tuple):
        return (learned[0].detach(), learned[1].detach())
    if learned is not None:
        return learned.detach()
    cfg = model.cfg
    p = next(model.parameters())
    h = torch.zeros(cfg.layers, batch, cfg.hidden_size, device=p.device, dtype=p.dtype)
    return (h, torch.zeros_like(h)) if cfg.cell == "lstm" else h


PRIME_CHUNK = 4096  # seed characters fed a call: bounds the (B, S, V) logits of a long seed


def prime(model: CharRNN, ids: torch.Tensor) -> Start:
    """Feed ids (B, S), S >= 1, from the start state, PRIME_CHUNK characters a call with the
    state carried (a seed of any length in bounded memory): the logits after the last
    character (B, V) and the state it left."""
    h = start_state(model, ids.shape[0])
    for at in range(0, ids.shape[1], PRIME_CHUNK):
        logits, h = model(ids[:, at : at + PRIME_CHUNK], h)  # (B, <=PRIME_CHUNK, V)
    return Start(logits[:, -1].float(), h)


@dataclass(frozen=True)
class LineEnds:
    """Where a line ends: at the newline, or when a stream has drawn `budget` characters and
    the next is not the newline (a line over the cap: the caller drops it)."""

    newline: int
    budget: int


@dataclass
class Start:
    """Where streams start: the logits for their first character (1 or B, V) and the state
    (L, 1 or B, H); one row serves every stream."""

    logits: torch.Tensor
    h: State
