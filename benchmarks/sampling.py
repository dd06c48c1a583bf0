"""Sampling speed: characters per second for 2,000 characters from a default-size LSTM,
beside the tutorial-style loop (LSTMCells in Python) and one fused nn.LSTM call a character."""

from __future__ import annotations

import statistics
import time

import torch

from benchmarks import reference
from charrnn_cli.config import ModelConfig
from charrnn_cli.model import CharRNN
from charrnn_cli.sampling.samples import Strategy, sample

N = 2000


def _rate(fn, repeats: int = 5) -> float:
    rates = []
    for r in range(repeats):
        start = time.perf_counter()
        fn(r)
        rates.append(N / (time.perf_counter() - start))
    return statistics.median(rates)


@torch.inference_mode()
def _fused_per_char(model: CharRNN, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    h, cur = None, torch.zeros(1, 1, dtype=torch.long)
    for _ in range(N):
        logits, h = model(cur, h)
        cur = torch.multinomial(torch.softmax(logits[0, -1], -1), 1, generator=gen).view(1, 1)


def run() -> None:
    torch.manual_seed(0)
    vocab = "".join(chr(32 + i) for i in range(65))
    model = CharRNN(ModelConfig(vocab_size=65)).eval()
    ours = _rate(lambda r: "".join(sample(model, vocab, [0], N, Strategy(1.0), random_seed=r)))
    tut = reference.sample_speed(reference.TutorialLSTM(65), N, repeats=3)
    fused = _rate(lambda r: _fused_per_char(model, r), repeats=3)
    emit_fields = dict(bench="sampling", chars=N, chars_per_sec=round(ours),
                       reference="tutorial loop (LSTMCell per character)",
                       reference_chars_per_sec=round(tut), ratio=round(ours / tut, 2),
                       fused_lstm_call_per_char=round(fused),
                       ratio_vs_fused=round(ours / fused, 2), target=25000)  # fmt: skip
    from benchmarks.common import emit

    emit(**emit_fields)
