"""Generating text: prime with the seed, then draw one character a step, state carried.

The tutorial's sampler lost the hidden state between characters; here the seed is fed through
the model in one call (`start.prime`) and every drawn character is fed back with the state it
left. `sample` is one stream, yielded as it is made; `sample_many` makes `--num` samples B at a
time on the same engine (sample k draws with the generator of `--random-seed` + k, as one
`sample` with that seed would). The engine is the numpy steppers on the CPU and the model on any
other device; both draw the same way (`draw`), so a seed gives the same text on each.
`beam_search` returns the most likely continuation of a given length instead.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from charrnn_cli.model import CharRNN
from charrnn_cli.sampling.start import prime
from charrnn_cli.sampling.strategy import Strategy
from charrnn_cli.sampling.streams import Engine, make_streams

__all__ = ["Strategy", "beam_search", "sample", "sample_many"]


def first_char(rng: np.random.Generator, unigram: list[int] | None, size: int) -> int:
    """Without a seed: a first character from the corpus's character frequencies."""
    freq = np.asarray(unigram if unigram and sum(unigram) > 0 else [1] * size, dtype=np.float64)
    return int(rng.choice(size, p=freq / freq.sum()))


def _device(model: CharRNN) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def sample(
    model: CharRNN,
    vocab: str,
    seed_ids: list[int],
    length: int | None,
    strategy: Strategy,
    *,
    random_seed: int | None = None,
    unigram: list[int] | None = None,
    engine: Engine = "auto",
) -> Iterator[str]:
    """Yield `length` characters (forever when None), a chunk at a time, after the seed ids.

    Without a seed, the first character is drawn from the corpus's character frequencies
    (`unigram`; uniform when unknown) and counts towards `length`.
    """
    model.eval()
    rng = np.random.default_rng(random_seed)
    if length is not None and length <= 0:  # nothing asked: not even the unprompted first
        return
    if not seed_ids:
        seed_ids = [first_char(rng, unigram, len(vocab))]
        yield vocab[seed_ids[0]]
        length = None if length is None else length - 1
    if length is not None and length <= 0:
        return
    start = prime(model, torch.tensor([seed_ids], device=_device(model)))
    streams = make_streams(model, start, strategy, [rng], engine=engine)
    for ids, _ in streams.run(length):
        yield "".join([vocab[i] for i in ids[:, 0].tolist()])


@torch.inference_mode()
def sample_many(
    model: CharRNN,
    vocab: str,
    seed_ids: list[int],
    length: int,
    strategy: Strategy,
    num: int,
    parallel: int,
    *,
    random_seed: int | None = None,
    unigram: list[int] | None = None,
    engine: Engine = "auto",
) -> Iterator[str]:
    """Yield `num` samples of `length` characters, made `parallel` streams at a time; sample k
    is what `sample` gives with `random_seed + k` (up to floating-point ties)."""
    model.eval()
    if length <= 0:  # nothing asked: not even the unprompted first character
        yield from [""] * num
        return
    for first in range(0, num, parallel):
        ks = range(first, min(num, first + parallel))
        rngs = [np.random.default_rng(None if random_seed is None else random_seed + k) for k in ks]
        steps, heads = length, [""] * len(rngs)
        if seed_ids:
            ids = torch.tensor([seed_ids], device=_device(model))  # one start for all
        else:
            firsts = [first_char(rng, unigram, len(vocab)) for rng in rngs]
            heads = [vocab[i] for i in firsts]
            ids = torch.tensor(firsts, device=_device(model))[:, None]  # (B, 1)
            steps -= 1
        drawn = np.empty((0, len(rngs)), np.int64)
        if steps > 0:
            streams = make_streams(model, prime(model, ids), strategy, rngs, engine=engine)
            drawn = np.concatenate([chunk for chunk, _ in streams.run(steps)])  # (steps, B)
        for b, head in enumerate(heads):
            yield head + "".join([vocab[i] for i in drawn[:, b].tolist()])


@torch.inference_mode()
def beam_search(model: CharRNN, vocab: str, seed_ids: list[int], length: int, width: int) -> str:
    """The most likely continuation of `length` characters, by beam search over `width` beams."""
    model.eval()
    if not seed_ids:
        raise ValueError("beam search needs a seed")
    start = prime(model, torch.tensor([seed_ids], device=_device(model)))
    h = start.h
    logp = torch.log_softmax(start.logits, -1)  # (1, V)
    scores = torch.zeros(1, device=logp.device)  # (W,)
    tokens = torch.empty(1, 0, dtype=torch.long, device=logp.device)  # (W, t)
    V = len(vocab)
    for _ in range(length):
        cand = (scores[:, None] + logp).reshape(-1)  # (W*V,)
        top = torch.topk(cand, min(width, cand.numel()))
        beam, tok = top.indices // V, top.indices % V
        scores = top.values
        tokens = torch.cat([tokens[beam], tok[:, None]], dim=1)
        h = tuple(t[:, beam] for t in h) if isinstance(h, tuple) else h[:, beam]
        out, h = model(tok[:, None], h)  # (W, 1, V)
        logp = torch.log_softmax(out[:, -1].float(), -1)
    best = int(torch.argmax(scores))
    return "".join(vocab[i] for i in tokens[best].tolist())
