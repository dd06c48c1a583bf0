"""What a choice has made and not yet posted: its text and, when asked for, its log-probabilities,
held compactly and dropped once posted. Torch-free.

A streamed choice holds only what a stop string may still claim (and what the last flush
made); a whole one holds its text to the end. Text is kept as its pieces (a flush's worth
each), so taking from the front or cutting at the back never re-copies what stays.
Log-probabilities are kept in flat arrays, 12 + 12k bytes a position for the top k (72 at
k = 5), instead of a tuple and a dict a position (about 600 bytes), and are shaped into
OpenAI's lists only a slice at a time, as they are sent.
"""

from __future__ import annotations

import json
import math
from array import array
from collections import deque
from collections.abc import Iterator
from typing import Any


class Text:
    """A string built at its end and taken from its front, as pieces."""

    def __init__(self) -> None:
        self.pieces: deque[str] = deque()
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, piece: str) -> None:
        if piece:
            self.pieces.append(piece)
            self.size += len(piece)

    def cut(self, keep: int) -> None:
        """Keep only the first `keep` characters."""
        while self.size > keep:
            last = self.pieces.pop()
            self.size -= len(last)
            if self.size < keep:
                self.add(last[: keep - self.size])

    def take(self, n: int) -> str:
        """Remove and return the first n characters."""
        out: list[str] = []
        while n > 0 and self.pieces:
            first = self.pieces.popleft()
            if len(first) > n:
                self.pieces.appendleft(first[n:])
                first = first[:n]
            out.append(first)
            n -= len(first)
            self.size -= len(first)
        return "".join(out)


class Scores:
    """Per position: the drawn character's id and log-probability (NaN: not scored, as the
    unprompted first character) and the k likeliest ids and log-probabilities."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.ids, self.lps = array("i"), array("d")
        self.top_ids, self.top_lps = array("i"), array("d")
        self.head = 0  # positions before this one were taken (dropped lazily)

    def __len__(self) -> int:
        return len(self.ids) - self.head

    def add(self, i: int, lp: float, top_ids: list[int], top_lps: list[float]) -> None:
        self.ids.append(i)
        self.lps.append(lp)
        self.top_ids.extend(top_ids)
        self.top_lps.extend(top_lps)

    def cut(self, keep: int) -> None:
        """Keep only the first `keep` positions."""
        end = self.head + keep
        del self.ids[end:], self.lps[end:]
        del self.top_ids[end * self.k :], self.top_lps[end * self.k :]

    def take(self, n: int) -> Scores:
        """Remove and return the first n positions (dropping what was taken, a half at a
        time, so taking is linear in all)."""
        out = Scores(self.k)
        a, b, k = self.head, self.head + n, self.k
        out.ids, out.lps = self.ids[a:b], self.lps[a:b]
        out.top_ids, out.top_lps = self.top_ids[a * k : b * k], self.top_lps[a * k : b * k]
        self.head = b
        if self.head > len(self.ids) // 2:
            del self.ids[: self.head], self.lps[: self.head]
            del self.top_ids[: self.head * k], self.top_lps[: self.head * k]
            self.head = 0
        return out


KEYS = ("tokens", "token_logprobs", "top_logprobs", "text_offset")


def shaped(vocab: str, head: str, scores: Scores | None, offset: int) -> dict[str, Any]:
    """OpenAI's `logprobs` object for `head` (echoed: not scored) then the scored positions,
    a piece of a choice that starts at `offset` (a small piece: a stream's chunk)."""
    return {
        key: [v for chunk in _chunks(vocab, head, scores, offset, 1 << 30, key) for v in chunk]
        for key in KEYS
    }


def shaped_json(vocab: str, head: str, scores: Scores, step: int = 4096) -> Iterator[str]:
    """The same object as JSON text, in pieces of `step` positions: a whole choice's logprobs
    without ever holding them as Python objects."""
    for n, key in enumerate(KEYS):
        yield ('{"' if n == 0 else '], "') + key + '": ['
        first = True
        for chunk in _chunks(vocab, head, scores, 0, step, key):
            body = json.dumps(chunk, ensure_ascii=False)[1:-1]
            if body:
                yield body if first else ", " + body
                first = False
    yield "]}"


def _chunks(
    vocab: str, head: str, scores: Scores | None, offset: int, step: int, key: str
) -> Iterator[list]:
    """One of the four lists, up to `step` positions at a time."""
    for a in range(0, len(head), step):
        n = len(head[a : a + step])
        if key == "tokens":
            yield list(head[a : a + step])
        elif key == "text_offset":
            yield list(range(offset + a, offset + a + n))
        else:
            yield [None] * n
    if scores is None:
        return
    offset += len(head)
    k, h = scores.k, scores.head
    for a in range(h, h + len(scores), step):
        b = min(h + len(scores), a + step)
        if key == "tokens":
            yield [vocab[i] for i in scores.ids[a:b].tolist()]
        elif key == "text_offset":
            yield list(range(offset + a - h, offset + b - h))
        elif key == "token_logprobs":
            yield [None if math.isnan(lp) else lp for lp in scores.lps[a:b].tolist()]
        else:
            ids, lps = scores.top_ids[a * k : b * k].tolist(), scores.top_lps[a * k : b * k]
            nan = scores.lps[a:b].tolist()
            yield [
                None if math.isnan(nan[p]) else
                {vocab[ids[j]]: lps[j] for j in range(p * k, p * k + k)}
                for p in range(b - a)
            ]  # fmt: skip
