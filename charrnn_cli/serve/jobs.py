"""What the scheduler and the HTTP side hand each other: a `Job` per choice, a `Sink` per request.

A `Job` is one stream, from its prompt to its end, with what it has made so far; the scheduler
thread owns it once submitted. A `Sink` lives in the event loop: the scheduler posts `Update`s
into it (`call_soon_threadsafe`, a batch of them a flush) and the request's handler takes them
as they come. A sink holds at most its request's `buffer` characters unread: a reader slower
than that is dropped (its streams freed), so no reader can hold the others back. Torch-free.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from charrnn_cli.sampling.request import SampleRequest
from charrnn_cli.vocab import Utf8Bytes

Logprob = tuple[str, float | None, dict[str, float] | None]  # character, its logprob, the top k


@dataclass
class Update:
    index: int  # which choice
    text: str  # its next piece
    logprobs: list[Logprob] | None = None  # one per character of text, when asked for
    finish: str | None = None  # "length" or "stop" when the choice ended with this piece
    made: int = 0  # with finish: the characters it generated (usage)


@dataclass
class Job:
    """One choice: its prompt's ids, how it draws and stops, and (scheduler side) its text."""

    index: int
    sink: Sink
    request: SampleRequest
    prompt_ids: list[int]
    seed: int | None
    stops: tuple[str, ...] = ()
    logprobs: int | None = None
    stream: bool = False
    decoder: Utf8Bytes | None = None  # a byte run's: the drawn bytes as text
    drawn: int = 0  # characters (bytes) drawn before it joined the pool: the unprompted first
    row: int = -1  # its row in the pool while it steps
    pieces: list[str] = field(default_factory=list)  # the text made so far, in pieces
    size: int = 0  # characters made so far
    tail: str = ""  # the last characters made, where a stop string may have begun
    unsent: str = ""  # streaming: made but not yet posted (held back while a stop may begin)
    lps: list[Logprob] = field(default_factory=list)
    sent_lps: int = 0
    cancelled: bool = False
    done: bool = False

    @property
    def holdback(self) -> int:
        return max(map(len, self.stops), default=1) - 1


class Sink:
    """A request's updates as they arrive, in the event loop."""

    def __init__(self, choices: int, buffer: int, cancel: Callable[[Sink], Any]) -> None:
        self.left, self.buffer, self._cancel = choices, buffer, cancel
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
        if self.unread > self.buffer and not self.finished:
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
