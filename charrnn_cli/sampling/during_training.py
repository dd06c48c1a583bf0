"""Samples drawn from the model while it trains, so a person can watch it learn.

After each held-out evaluation (or every `sample_every` steps) the training loop asks a
`TrainingSampler` for a short text: `sample_len` characters from the run's start state (after
`sample_seed` when one is given) at `sample_temperature`, on the fast sampling path
(`sampling.generate`: the numpy steppers on the CPU) with the model in eval mode and no
gradients. The draw has a generator of its own, seeded from the run's `random_seed` and the
step, so the same options and seed give the same samples; it leaves training as it found it
(the model's train/eval mode, and torch's RNG, which a draw never reads but a future engine
might), so a run with samples ends with the same weights as one without. Each sample is kept
in the run's samples.jsonl (kept.py). On a data-parallel run only rank 0 makes one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from charrnn_cli.config import TrainConfig, Vocab
from charrnn_cli.data.encode import unknown_chars
from charrnn_cli.errors import UsageError
from charrnn_cli.model import CharRNN
from charrnn_cli.sampling import kept
from charrnn_cli.sampling.generator import SamplingModel, generate
from charrnn_cli.sampling.request import SampleRequest
from charrnn_cli.storage.store import MetricsWriter


class TrainingSampler:
    """Draws and keeps the samples of one run; `of` gives None when the run takes none."""

    def __init__(self, cfg: TrainConfig, vocab: str, kind: Vocab, unigram: list[int]) -> None:
        self.every = cfg.sample_every  # None: after each evaluation
        self.length, self.temperature = cfg.sample_len, cfg.sample_temperature
        self.random_seed, self.prompt = cfg.random_seed, cfg.sample_seed
        self.vocab, self.kind, self.unigram = vocab, kind, unigram
        self.kept: MetricsWriter | None = None
        missing = unknown_chars(self.prompt, vocab) if kind == "chars" else []
        if missing:
            shown = ", ".join(repr(c) for c in missing[:10])
            raise UsageError(f"--sample-seed has characters the corpus lacks: {shown}; remove them")

    @classmethod
    def of(
        cls, cfg: TrainConfig, vocab: str, kind: Vocab, unigram: list[int]
    ) -> TrainingSampler | None:
        return None if cfg.sample_every == 0 else cls(cfg, vocab, kind, unigram)

    def open(self, run: str, step: int) -> None:
        """Keep samples in `run`'s folder, after those up to `step` (where it resumes)."""
        self.kept = kept.writer(run, step)

    def close(self) -> None:
        if self.kept is not None:
            self.kept.close()

    @property
    def after_evaluations(self) -> bool:
        return self.every is None

    def due(self, step: int) -> bool:
        """Whether `step` takes a sample by the step count (`--sample-every N`)."""
        return bool(self.every) and step % self.every == 0

    def take(self, model: CharRNN, step: int, val_loss: float | None) -> dict[str, Any]:
        """Draw the sample of `step` and keep it: the record (step, val_loss, temperature,
        text)."""
        record = {"step": step, "val_loss": val_loss, "temperature": self.temperature}
        record["text"] = self.draw(model, step)
        if self.kept is not None:
            self.kept.write(record)
        return record

    def draw(self, model: CharRNN, step: int) -> str:
        """The text of `step`'s sample, training's state (mode, RNG) left as it was."""
        sm = SamplingModel(model, self.vocab, self.kind, self.unigram, None, "")
        request = SampleRequest(
            prompt=self.prompt, length=self.length, temperature=self.temperature,
            random_seed=seed_for(self.random_seed, step),
        )  # fmt: skip
        dev = sm.device
        was_training = model.training
        try:
            with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
                return "".join(piece.text for piece in generate(sm, request))
        finally:
            model.train(was_training)


def seed_for(random_seed: int, step: int) -> int:
    """The generator seed of the sample at `step`: the run's seed and the step, mixed."""
    state = np.random.SeedSequence([random_seed, step]).generate_state(2, np.uint32)
    return int(state[0]) << 32 | int(state[1])
