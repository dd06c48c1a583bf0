"""The one way in to sampling: `load` a run for sampling, then `generate(model, request)`.

Every caller that makes text goes through here: `charrnn sample`, the Python API and the checks
of an exported model. `generate` yields `Piece`s: the pieces of sample k in order (the first is
the prompt when the request echoes it, possibly empty), or, with `lines`, one whole line each.
It picks the engine the request needs: one stream at a time (`samples.sample`), many streams a
step for `num` samples (`samples.sample_many`), beam search, or the line sampler. A byte run's
bytes are decoded on the way out, never a character cut; what could not be decoded, and the
lines dropped, are counted in the caller's `Report`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from charrnn_cli import vocab as vocabulary
from charrnn_cli.data.encode import unknown_chars
from charrnn_cli.errors import CharrnnError, UsageError
from charrnn_cli.model import CharRNN
from charrnn_cli.sampling.lines import LineRules, Tally, make_rules, sample_lines
from charrnn_cli.sampling.request import SampleRequest
from charrnn_cli.sampling.samples import beam_search, sample, sample_many
from charrnn_cli.sampling.strategy import Strategy

PARALLEL = {"cpu": 64, "accelerator": 256}  # streams a step when the request leaves it open


@dataclass
class SamplingModel:
    """A model ready to sample, with what sampling needs beside its weights."""

    model: CharRNN
    vocab: str  # the characters in id order (BYTES for a byte run)
    kind: str  # "chars" or "bytes"
    unigram: list[int] | None  # the corpus's character counts: the first character unprompted
    corpus: dict[str, Any] | None  # the training corpus (path, sha256), for lines
    name: str  # the run's name

    @property
    def device(self) -> torch.device:
        return self.model.head.weight.device


@dataclass
class Piece:
    index: int  # which sample (which line, with lines)
    text: str  # the next piece of that sample, or one whole line without its newline


@dataclass
class Report:
    """What a generation counted, filled in as it runs."""

    tally: Tally | None = None  # lines: kept and dropped, and why
    rules: LineRules | None = None  # lines: the rules they were judged by
    replaced: int = 0  # byte runs: invalid UTF-8 sequences shown as U+FFFD

    def lines_summary(self) -> str | None:
        """One line counting the lines kept and dropped, or None without lines."""
        if self.tally is None or self.rules is None:
            return None
        return self.tally.summary(self.rules)


def load(
    run: str | None, checkpoint: str = "best", device: str = "auto", *, batched: bool = False
) -> SamplingModel:
    """Load a run (name, unique prefix, `latest` or None) for sampling, on the device that
    suits it (`device.for_sampling`)."""
    from charrnn_cli.device import for_sampling
    from charrnn_cli.storage import store
    from charrnn_cli.storage.checkpoint import configs, load_run

    spec = for_sampling(device, _hidden_size(run), batched)
    model, vocab, ck, name = load_run(run, checkpoint, spec)
    try:
        corpus = store.read_config(name).get("corpus")
    except CharrnnError:
        corpus = None
    known = isinstance(corpus, dict) and (corpus.get("path") or corpus.get("sha256"))
    corpus = corpus if known else None
    return SamplingModel(model, vocab, configs(ck)[0].vocab, ck.get("unigram"), corpus, name)


def _hidden_size(run: str | None) -> int | None:
    from charrnn_cli.storage import store

    try:
        return store.read_config(store.resolve(run))["model"]["hidden_size"]
    except (CharrnnError, KeyError, TypeError):
        return None


def prompt_ids(sm: SamplingModel, request: SampleRequest) -> tuple[str, list[int]]:
    """The prompt as the run can read it (unknown characters refused or skipped) and its ids."""
    text = request.prompt
    if sm.kind == "chars":
        missing = unknown_chars(text, sm.vocab)
        if missing and request.unknown == "error":
            shown = ", ".join(repr(c) for c in missing[:10])
            raise UsageError(
                f"the seed has characters this run never saw: {shown}; "
                "remove them or pass --unknown skip"
            )
        text = "".join(c for c in text if c in sm.vocab) if missing else text
    return text, vocabulary.seed_ids(text, sm.kind, sm.vocab)


def generate(
    sm: SamplingModel, request: SampleRequest, report: Report | None = None
) -> Iterator[Piece]:
    """Yield the pieces of the samples (or lines) the request asks for, as they are made."""
    report = report if report is not None else Report()
    if sm.kind == "bytes" and request.lines is not None:
        raise UsageError("--lines needs a run of characters; this run reads bytes (--vocab bytes)")
    text, ids = prompt_ids(sm, request)
    strategy = Strategy(request.effective_temperature, request.top_k, request.top_p)
    parallel = request.parallel or PARALLEL["cpu" if sm.device.type == "cpu" else "accelerator"]
    if request.lines is not None:
        yield from _lines(sm, request, text, strategy, parallel, report)
        return
    heading = text if request.echo else ""
    if request.batched:
        made = sample_many(
            sm.model, sm.vocab, ids, request.length or 0, strategy, request.num, parallel,
            random_seed=request.random_seed, unigram=sm.unigram,
        )  # fmt: skip
        for k, body in enumerate(made):
            yield Piece(k, heading + "".join(_decoded([body], sm, report)))
        return
    for k in range(request.num):
        yield Piece(k, heading)
        rs = None if request.random_seed is None else request.random_seed + k
        for piece in _decoded(_one(sm, request, ids, strategy, rs), sm, report):
            yield Piece(k, piece)


def _one(
    sm: SamplingModel, request: SampleRequest, ids: list[int], strategy: Strategy, rs: int | None
) -> Iterator[str]:
    """One sample's characters as they are made (a beam search's continuation at once)."""
    if request.beam_width is None:
        yield from sample(
            sm.model, sm.vocab, ids, request.length, strategy, random_seed=rs, unigram=sm.unigram
        )
        return
    if not ids:
        raise UsageError("--beam-width needs a --seed to start from")
    yield beam_search(sm.model, sm.vocab, ids, request.length or 0, request.beam_width)


def _decoded(pieces: Iterator[str] | list[str], sm: SamplingModel, report: Report) -> Iterator[str]:
    """A sample's text: as it is for a run of characters; a byte run's decoded as it comes."""
    decoder = vocabulary.Utf8Bytes() if sm.kind == "bytes" else None
    yield from vocabulary.readable(pieces, decoder)
    if decoder is not None:
        report.replaced += decoder.replaced


def _lines(
    sm: SamplingModel,
    request: SampleRequest,
    text: str,
    strategy: Strategy,
    parallel: int,
    report: Report,
) -> Iterator[Piece]:
    """Whole lines, each starting with the prompt's last line (cut off without echo)."""
    rules = make_rules(
        sm.corpus, request.lines or 0, request.min_line_len, request.max_line_len,
        unique=request.unique, novel=request.novel,
    )  # fmt: skip
    report.tally, report.rules = (tally := Tally()), rules
    skip = 0 if request.echo else len(text.rsplit("\n", 1)[-1])
    made = sample_lines(
        sm.model, sm.vocab, text, rules, strategy, tally,
        parallel=parallel, random_seed=request.random_seed,
    )  # fmt: skip
    for n, line in enumerate(made):
        yield Piece(n, line[skip:])
    if tally.gave_up:
        raise CharrnnError(
            f"gave up after {tally.tries} tries with {tally.kept} of {rules.count} lines: too "
            "many were dropped (see above); try another --temperature or fewer filters"
        )
