"""What the scheduler and the HTTP side hand each other: a `Job` per choice, a `Sink` per request.

A `Job` is one stream, from its prompt to its end, with what it has made so far; the scheduler
thread owns it once submitted. A `Sink` lives in the event loop: the scheduler posts `Update`s
into it (`call_soon_threadsafe`, a batch of them a flush) and the request's handler takes them
as they come. A streamed request's sink holds at most its `buffer` characters unread: a reader
slower than that is dropped (its streams freed), so no reader can hold the others back. A whole
(not streamed) answer has no reader until it is complete: its size is bounded by its caps
(n x max_tokens), not by the buffer. Torch-free.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from charrnn_cli.sampling.request import SampleRequest
from charrnn_cli.serve.held import Scores, Text
from charrnn_cli.serve.stops import Matcher, Stops
from charrnn_cli.vocab import Utf8Bytes


@dataclass
class Update:
    index: int  # which choice
    text: str  # its next piece
    logprobs: Scores | None = None  # one position per character of text, when asked for
    finish: str | None = None  # "length" or "stop" when the choice ended with this piece
    made: int = 0  # with finish: the characters it generated (usage)


@dataclass
class Job:
    """One choice: its prompt's ids, how it draws and stops, and (scheduler side) what it made
    and has not yet posted."""

    index: int
    sink: Sink
    request: SampleRequest
    prompt_ids: list[int]
    seed: int | None
    stops: Stops | None = None  # the request's stop strings (shared by its choices)
    logprobs: int | None = None
    stream: bool = False
    decoder: Utf8Bytes | None = None  # a byte run's: the drawn bytes as text
    drawn: int = 0  # characters (bytes) drawn before it joined the pool: the unprompted first
    row: int = -1  # its row in the pool while it steps
    text: Text = field(default_factory=Text)  # made and not yet posted
    size: int = 0  # characters made so far (kept: a stop string's cut drops the rest)
    matcher: Matcher | None = None
    scores: Scores | None = None  # the log-probabilities of `text` (and of ids not yet text)
    cancelled: bool = False
    done: bool = False

    def __post_init__(self) -> None:
        if self.stops is not None and self.stops.strings:
            self.matcher = Matcher(self.stops)
        if self.logprobs is not None:
            self.scores = Scores(self.logprobs)

    @property
    def holdback(self) -> int:
        """Characters at the end of its text that a stop string may still claim."""
        return 0 if self.matcher is None else self.matcher.held


class Sink:
    """A request's updates as they arrive, in the event loop."""

    def __init__(
        self, choices: int, buffer: int, cancel: Callable[[Sink], Any], stream: bool = True
    ) -> None:
        self.left, self.buffer, self._cancel = choices, buffer, cancel
        self.stream = stream  # the slow-reader rule is a stream's: a whole answer comes at once
        self.pending: list[Update] = []
        self.unread = 0
        self.event = asyncio.Event()
        self.failed: str | None = None
        self.jobs: list[Job] = []

    @property
    def finished(self) -> bool:
        return self.left == 0 or self.failed is not None

    def put(self, update: Update) -> None:
        """In the loop: one update; a reader that left `buffer` characters unread is dropped."""
        if self.failed is not None:
            return
        self.pending.append(update)
        self.unread += len(update.text)
        if update.finish is not None:
            self.left -= 1
        if self.stream and self.unread > self.buffer and not self.finished:
            self.fail(f"the client read too slowly ({self.unread} characters unread)")
        self.event.set()

    def fail(self, why: str) -> None:
        """End the request's streams (a reader gone or too slow, a server stopping)."""
        if self.failed is None and self.left:
            self.failed = why
            self._cancel(self)
        self.event.set()

    async def take(self) -> list[Update]:
        """Wait for updates; return those that came (empty once the request has ended)."""
        while not self.pending and not self.finished:
            self.event.clear()
            await self.event.wait()
        out, self.pending, self.unread = self.pending, [], 0
        return out


def deliver(updates: list[tuple[Sink, Update]]) -> None:
    """In the loop: hand a flush's updates to their sinks."""
    for sink, update in updates:
        sink.put(update)


def take(job: Job, new: str) -> str | None:
    """Add new text to the job; "stop" (the text cut before it) when a stop string completes."""
    if not new:
        return None
    if job.matcher is not None:
        at = job.matcher.feed(new)  # where the stop string that completed first begins
        if at is not None:
            if at >= 0:
                job.text.add(new[:at])
            else:  # it began in the text held back (never in text already posted)
                job.text.cut(len(job.text) + at)
            job.size += at
            if job.scores is not None:
                job.scores.cut(len(job.text))
            return "stop"
    job.text.add(new)
    job.size += len(new)
    return None


def piece(job: Job, *, final: bool, finish: str | None = None) -> Update:
    """The job's next piece to post: what it holds, less what a stop string may yet claim
    (a whole completion posts nothing until its end)."""
    if final:
        n = len(job.text)
    else:
        n = max(0, len(job.text) - job.holdback) if job.stream else 0
    text = job.text.take(n)
    lps = None if job.scores is None else job.scores.take(n)
    return Update(job.index, text, lps, finish, job.size if final else 0)
