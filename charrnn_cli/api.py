"""The Python API: a trained model called from a program, the way text-generation libraries are.

    import charrnn_cli as charrnn

    m = charrnn.load("bard")        # a run name, a unique prefix, "latest", or an exported folder
    m.generate("ROMEO:", n=3, length=200, temperature=0.8, seed=1)   # three continuations
    m.score(text)["bits_per_char"]  # the figures of `charrnn eval --corpus` on that text

A thin layer over the functions the CLI calls: `generate`, `stream` and `lines` build a
`SampleRequest` and call `sampling.generate` (the same text as `charrnn sample` for the same
options and seed), `score` calls `evaluate.score_text` as `charrnn eval --corpus` does, and
`export` calls `export.writer` as `charrnn export` does. Mistakes raise `CharrnnError` (a
`UsageError` for arguments that cannot work) with the CLI's one-line message.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charrnn_cli.sampling.request import SampleRequest

if TYPE_CHECKING:
    from charrnn_cli.sampling.generator import SamplingModel

__all__ = ["Model", "load"]


def load(run: str | None = None, checkpoint: str = "best", device: str = "auto") -> Model:
    """Load a run for generating and scoring: a name, a unique prefix, `latest` (or None), or
    the path of an exported folder; `checkpoint` best or last; `device` auto, cpu, cuda, ..."""
    from charrnn_cli.sampling.generator import load as load_sampling

    return Model(load_sampling(run, checkpoint, device), checkpoint)


class Model:
    """A loaded model; see `load`."""

    def __init__(self, sampling_model: SamplingModel, checkpoint: str = "best") -> None:
        self._sm = sampling_model
        self.checkpoint = checkpoint

    @property
    def name(self) -> str:
        """The run's name, or the exported folder's path."""
        return self._sm.name

    @property
    def vocab(self) -> str:
        """The characters it knows, in id order (256 byte values for a byte run)."""
        return self._sm.vocab

    @property
    def config(self) -> dict[str, Any]:
        """The model's shape: cell, layers, hidden_size, embed_size, ..."""
        from dataclasses import asdict

        return asdict(self._sm.model.cfg)

    def __repr__(self) -> str:
        cfg = self._sm.model.cfg
        return f"<charrnn.Model {self.name!r}: {cfg.layers}x{cfg.hidden_size} {cfg.cell}>"

    def generate(
        self,
        prompt: str = "",
        n: int = 1,
        length: int = 200,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
    ) -> list[str]:
        """`n` continuations of `prompt` (without it), `length` characters each; temperature 0
        is greedy (`charrnn sample --greedy`); the same `seed` gives the same texts."""
        request = self._request(prompt, length, temperature, top_k, top_p, seed, num=n)
        out = [""] * n
        for piece in self._pieces(request):
            out[piece.index] += piece.text
        return out

    def stream(
        self,
        prompt: str = "",
        length: int | None = 200,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
    ) -> Iterator[str]:
        """The continuation of `prompt` in pieces as they are drawn; `length` None: no end."""
        request = self._request(prompt, length, temperature, top_k, top_p, seed)
        return (p.text for p in self._pieces(request) if p.text)

    def lines(
        self,
        n: int,
        prompt: str = "",
        novel: bool = False,
        unique: bool = False,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
    ) -> list[str]:
        """`n` whole lines (a corpus of one item a line), each starting with the prompt's last
        line; `novel` drops lines of the training corpus, `unique` repeats none."""
        request = self._request(
            prompt, None, temperature, top_k, top_p, seed, lines=n, novel=novel, unique=unique,
            echo=True,
        )  # fmt: skip
        return [p.text for p in self._pieces(request)]

    def score(self, text: str) -> dict[str, Any]:
        """The figures of `charrnn eval --corpus` on `text`: chars, loss (nats per character),
        bits_per_char, perplexity, accuracy, skipped (characters outside the vocabulary)."""
        from charrnn_cli.evaluate import BLOCK_CHARS, figures, score_text
        from charrnn_cli.text import read_blocks

        blocks = read_blocks(io.BytesIO(text.encode("utf-8")), "the text", BLOCK_CHARS)
        sm = self._sm
        return figures(*score_text(sm.model, blocks, sm.vocab, sm.kind), sm.kind)

    def export(self, path: str | Path, format: str = "folder", force: bool = False) -> Path:
        """Write the model as `charrnn export` does: folder, onnx or html; returns the path."""
        from charrnn_cli.export.writer import export_run

        return export_run(self.name, self.checkpoint, format, Path(path), force)

    def _request(self, prompt, length, temperature, top_k, top_p, seed, **kw) -> SampleRequest:
        return SampleRequest(
            prompt=prompt, length=length, temperature=temperature, top_k=top_k, top_p=top_p,
            greedy=temperature == 0, random_seed=seed, echo=kw.pop("echo", False), **kw,
        )  # fmt: skip

    def _pieces(self, request: SampleRequest):
        from charrnn_cli.sampling.generator import generate

        return generate(self._sm, request)
