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

    m = charrnn.train("pysrc", "py", max_minutes=1, on_event=print)   # `charrnn train`'s run
    m.history()["held_out"]; m.plot()      # the curves, as data and as a matplotlib Figure
    charrnn.fetch("pysrc"); charrnn.runs() # `charrnn fetch`, `charrnn runs --json`

`train` calls the function `charrnn train` calls (commands/train_run.py, by way of
commands/train_api.py, which checks the keywords), `fetch` and `runs` the command's own. None
of them prints to stdout, exits or leaves a signal handler behind.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charrnn_cli.errors import CharrnnError
from charrnn_cli.sampling.request import SampleRequest

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from charrnn_cli.sampling.generator import SamplingModel

__all__ = ["CharrnnError", "Model", "fetch", "load", "runs", "train"]
History = dict[str, list[dict[str, Any]]]
PARTS = (("train", "train"), ("held-out", "held_out"))  # the curves' labels, history's keys


def load(run: str | None = None, checkpoint: str = "best", device: str = "auto") -> Model:
    """Load a run for generating and scoring: a name, a unique prefix, `latest` (or None), or
    the path of an exported folder; `checkpoint` best or last; `device` auto, cpu, cuda, ..."""
    from charrnn_cli.sampling.generator import load as load_sampling

    return Model(load_sampling(run, checkpoint, device), checkpoint)


def train(
    corpus: str | Path | None = None,
    run: str | None = None,
    *,
    progress: bool = True,
    on_event: Callable[[dict[str, Any]], bool | None] | None = None,
    **options: Any,
) -> Model:
    """Train as `charrnn train` does and return the run's best checkpoint, loaded.

    `corpus`: what `--corpus` takes (a registry or cached name, a path) or the text itself (a
    `str` holding a newline); None: tinyshakespeare. `run`: the run's name (None: one is made
    up). `options`: `charrnn train`'s, each under its own name (`hidden_size=256`,
    `preset="cpu"`, `max_minutes=5`, `resume=True`, `init_from="bard"`, `random_seed=1`, ...).
    `on_event(record)` hears each record (a dict: kind start, step, eval, save or end, step,
    loss, val_loss, chars_per_s, lr, ...); returning False stops training as `max_steps` would,
    after a last evaluation and save. `progress`: a bar on stderr, a live display in a
    notebook; False: nothing. Ctrl-C saves the run, then raises KeyboardInterrupt."""
    from charrnn_cli.commands import train_api

    return load(train_api.train(corpus, run, progress, on_event, options))


def fetch(
    name_or_url: str | None = None,
    *,
    name: str | None = None,
    sha256: str | None = None,
    force: bool = False,
    mirror: str | None = None,
    max_bytes: int | None = None,
    progress: bool = True,
) -> Path:
    """Make sure a corpus is cached, as `charrnn fetch` does, and return its file: a registry
    name (tinyshakespeare, the default; shakespeare; pysrc, built offline), a cached name or
    an http(s) URL (`sha256` pins it); `name` caches it under another name."""
    from charrnn_cli.commands.fetch import fetched
    from charrnn_cli.corpora import DEFAULT

    source = name_or_url or DEFAULT
    return fetched(source, not progress, name, sha256, force, mirror, max_bytes)[0].path


def runs() -> list[dict[str, Any]]:
    """The runs, newest first, as `charrnn runs --json` lists them (name, corpus, cell, steps,
    best_val_loss, path, ...)."""
    from charrnn_cli.commands.runs import listing

    return listing()


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

    def history(self) -> History:
        """The run's curves from its metrics: `{"train": [{"step", "loss", "lr", ...}, ...],
        "held_out": [{"step", "loss", "bits_per_char", "accuracy", ...}, ...]}`."""
        from charrnn_cli import export
        from charrnn_cli.storage import store

        if export.is_folder(self.name):
            raise CharrnnError(
                f"{self.name} is an exported folder: its training history stays with the run"
            )
        train: dict[int, dict[str, Any]] = {}
        held_out = []
        for r in store.read_metrics(self.name):
            when = {"step": r["step"], "epoch": r.get("epoch"), "elapsed_s": r.get("elapsed_s")}
            if r.get("train_loss") is not None and r["step"] not in train:
                more = {"lr": r.get("lr"), "chars_per_s": r.get("chars_per_sec")}
                train[r["step"]] = {**when, "loss": r["train_loss"], **more}
            if r.get("val_loss") is not None:
                more = {"bits_per_char": r.get("val_bpc"), "accuracy": r.get("val_accuracy")}
                held_out.append({**when, "loss": r["val_loss"], **more})
        return {"train": list(train.values()), "held_out": held_out}

    def plot(self) -> Figure:
        """The training and held-out loss curves, a matplotlib Figure (`pip install
        'charrnn[plot]'`): a notebook shows it; `.savefig("loss.png")` writes it."""
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise CharrnnError(
                "Model.plot needs matplotlib: pip install 'charrnn[plot]' (or pip install "
                "matplotlib)"
            ) from None
        from charrnn_cli.storage.curves import draw

        h = self.history()
        series = {key: [(r["step"], r["loss"]) for r in h[part]] for key, part in PARTS}
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
        draw(ax, series, self.name)
        fig.tight_layout()
        plt.close(fig)  # not pyplot's to show as well: the caller has it
        return fig

    def _request(self, prompt, length, temperature, top_k, top_p, seed, **kw) -> SampleRequest:
        return SampleRequest(
            prompt=prompt, length=length, temperature=temperature, top_k=top_k, top_p=top_p,
            greedy=temperature == 0, random_seed=seed, echo=kw.pop("echo", False), **kw,
        )  # fmt: skip

    def _pieces(self, request: SampleRequest):
        from charrnn_cli.sampling.generator import generate

        return generate(self._sm, request)
