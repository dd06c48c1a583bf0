"""`--lines N`: whole new lines from a model trained on one item a line, many streams at a time.

Every line starts from the state the model has at a line start (the seed's text after a newline,
primed once) and ends at the newline, which is not part of it. B streams run in lockstep
(`streams`); a stream that ends a line starts the next from that line-start state again. Lines
come out in the order they were started (not the order they end, which would put short lines
first), so the output depends only on the `--random-seed` and B. A line is dropped, and
counted, when it hits the length cap, is shorter than the minimum, is in the training corpus
(`--novel`: the corpus's lines are held as sorted 8-byte hashes, 8 bytes a line), or was
already printed (`--unique`). After `GIVE_UP` x N tries the sampler stops with what it found.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from charrnn_cli.errors import CharrnnError, UsageError
from charrnn_cli.model import CharRNN
from charrnn_cli.sampling.start import LineEnds, prime
from charrnn_cli.sampling.strategy import Strategy, stream_rngs
from charrnn_cli.sampling.streams import Engine, make_streams

GIVE_UP = 20  # tries per line asked for, before giving up
CAP_PER_LONGEST = 4  # the default cap: this many times the corpus's longest line
CAP_UNKNOWN = 1000  # ...or this when the corpus cannot be read
HASH_BLOCK = 1 << 16  # --novel: line hashes gathered as Python ints before a numpy block


def line_hash(line: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(line, digest_size=8).digest(), "little")


@dataclass
class CorpusLines:
    """What the line sampler needs to know of the training corpus."""

    longest: int  # characters in its longest line
    hashes: np.ndarray | None = None  # sorted distinct uint64 hashes of its lines

    def __contains__(self, line: str) -> bool:
        if self.hashes is None:
            return False
        h = np.uint64(line_hash(line.encode("utf-8")))
        i = int(np.searchsorted(self.hashes, h))
        return i < len(self.hashes) and self.hashes[i] == h


def corpus_path(info: dict) -> Path:
    """Where the run's corpus is: its text in the content-addressed cache, found by the
    sha256 (it survives a moved training file and a moved CHARRNN_HOME's record), else the
    path recorded at training; CharrnnError when neither is there."""
    from charrnn_cli.corpora import cache

    sha = info.get("sha256")
    if isinstance(sha, str) and cache.SHA_RE.fullmatch(sha) and cache.blob_path(sha).is_file():
        return cache.blob_path(sha)
    path = Path(str(info.get("path", "")))
    if not path.is_file():
        raise CharrnnError(f"the run's training corpus {str(path)!r} is gone: fetch it again")
    return path


def scan_corpus(info: dict, *, hashes: bool) -> CorpusLines:
    """Read the run's corpus (config.json's `corpus`: path and sha256) one line at a time: its
    longest line and, with `hashes`, its lines' hashes (8 bytes a line, gathered in numpy
    blocks), checked against the sha256."""
    path = corpus_path(info)
    sha, longest, block, blocks = hashlib.sha256(), 0, [], []
    with open(path, "rb") as fh:
        for raw in fh:
            sha.update(raw)
            line = raw[:-1] if raw.endswith(b"\n") else raw
            n = len(line) if line.isascii() else len(line.decode("utf-8", "replace"))
            longest = max(longest, n)
            if hashes:
                block.append(line_hash(line))
                if len(block) == HASH_BLOCK:
                    blocks.append(np.unique(np.array(block, dtype=np.uint64)))
                    block = []
    if hashes and sha.hexdigest() != info.get("sha256"):
        raise CharrnnError(f"the run's training corpus {path} changed since training (sha256)")
    if not hashes:
        return CorpusLines(longest)
    blocks.append(np.array(block, dtype=np.uint64))
    return CorpusLines(longest, np.unique(np.concatenate(blocks)))


@dataclass
class LineRules:
    count: int  # lines wanted
    max_len: int  # longer lines are dropped, never cut
    min_len: int = 1
    unique: bool = False
    corpus: CorpusLines | None = None  # drop lines found here (--novel)
    note: str | None = None  # why the default cap is CAP_UNKNOWN (a warning for the user)


def make_rules(
    corpus_info: dict | None,
    count: int,
    min_len: int = 1,
    max_len: int | None = None,
    *,
    unique: bool = False,
    novel: bool = False,
) -> LineRules:
    """The rules for `count` lines; the corpus (config.json's `corpus`, None when unknown) is
    read for --novel, which needs it, and for the default cap (CAP_PER_LONGEST x its longest
    line), which falls back to CAP_UNKNOWN, with a `note` saying why, when it cannot be read."""
    corpus, note = None, None
    if novel and not corpus_info:
        raise CharrnnError("this run does not name its training corpus: --novel cannot check")
    if corpus_info and (novel or max_len is None):
        try:
            corpus = scan_corpus(corpus_info, hashes=novel)
        except (CharrnnError, OSError) as exc:
            if novel:
                raise
            why = exc if isinstance(exc, CharrnnError) else f"{exc.strerror}: {exc.filename}"
            note = f"{why}; lines are capped at {CAP_UNKNOWN} characters (set --max-line-len)"
    if max_len is None:
        max_len = CAP_PER_LONGEST * max(corpus.longest, 1) if corpus else CAP_UNKNOWN
    return LineRules(count, max_len, min_len, unique, corpus if novel else None, note)


@dataclass
class Tally:
    """What happened to each line the streams made."""

    kept: int = 0
    over_cap: int = 0
    too_short: int = 0
    in_corpus: int = 0
    repeated: int = 0
    gave_up: bool = False
    seen: set[str] = field(default_factory=set, repr=False)

    @property
    def tries(self) -> int:
        return self.kept + self.over_cap + self.too_short + self.in_corpus + self.repeated

    def judge(self, line: str | None, rules: LineRules) -> bool:
        """Count the line (None: it hit the cap) and say whether to print it."""
        if line is None:
            self.over_cap += 1
        elif len(line) < rules.min_len:
            self.too_short += 1
        elif rules.corpus is not None and line in rules.corpus:
            self.in_corpus += 1
        elif rules.unique and line in self.seen:
            self.repeated += 1
        else:
            self.kept += 1
            if rules.unique:
                self.seen.add(line)
            return True
        return False

    def summary(self, rules: LineRules) -> str:
        why = [
            (self.in_corpus, "in the corpus"),
            (self.repeated, "repeated"),
            (self.too_short, f"shorter than {rules.min_len}"),
            (self.over_cap, f"over the cap of {rules.max_len}"),
        ]
        dropped = ", ".join(f"{n} {reason}" for n, reason in why if n) or "none"
        return f"{self.kept} lines from {self.tries} tries; dropped: {dropped}"


@torch.inference_mode()
def sample_lines(
    model: CharRNN,
    vocab: str,
    seed: str,
    rules: LineRules,
    strategy: Strategy,
    tally: Tally,
    *,
    parallel: int,
    random_seed: int | None = None,
    engine: Engine = "auto",
) -> Iterator[str]:
    """Yield up to `rules.count` lines (without their newline), each starting with the seed's
    last line; `tally` counts every try. Stops early, `tally.gave_up` set, after GIVE_UP x N."""
    if "\n" not in vocab:
        raise UsageError("this run's corpus has no newline: --lines needs one item a line")
    prefix = seed.rsplit("\n", 1)[-1]
    if len(prefix) > rules.max_len:
        raise UsageError(f"the seed's last line is longer than the cap of {rules.max_len}")
    stoi = {c: i for i, c in enumerate(vocab)}
    model.eval()
    device = next(model.parameters()).device
    start = prime(model, torch.tensor([[stoi[c] for c in "\n" + seed]], device=device))
    ends = LineEnds(newline=stoi["\n"], budget=rules.max_len - len(prefix))
    streams = make_streams(model, start, strategy, stream_rngs(random_seed, parallel), ends, engine)
    carry: list[list[np.ndarray]] = [[] for _ in range(parallel)]  # each stream's line so far
    # lines are numbered as they start (streams 0..B-1 first, then each new one as its stream
    # ends a line) and judged and written in that order, so that short lines, which end first,
    # do not come first; one that ends early waits in `done` for those started before it
    started = list(range(parallel))  # the number of the line each stream is making
    done: dict[int, str | None] = {}
    next_start, next_out = parallel, 0
    for ids, ended in streams.run():
        begin = np.zeros(parallel, np.int64)
        for t, b in zip(*np.nonzero(ended), strict=True):
            piece = ids[begin[b] : t + 1, b]
            begin[b] = t + 1
            drawn = np.concatenate([*carry[b], piece]) if carry[b] else piece
            carry[b] = []
            line = None if drawn[-1] != ends.newline else prefix + _text(vocab, drawn[:-1])
            done[started[b]], started[b], next_start = line, next_start, next_start + 1
        while next_out in done:
            line = done.pop(next_out)
            next_out += 1
            if tally.judge(line, rules):
                yield line
                if tally.kept == rules.count:
                    return
            if tally.tries >= GIVE_UP * rules.count:
                tally.gave_up = True
                return
        for b in range(parallel):
            if begin[b] < len(ids):
                carry[b].append(ids[begin[b] :, b])


def _text(vocab: str, ids: np.ndarray) -> str:
    return "".join([vocab[i] for i in ids.tolist()])
