"""Continuous batching: one thread steps every active stream of a model at once.

`Batcher.submit` turns a request's choices into `Job`s. A primer thread feeds each prompt
through the model from its start state (`start.prime`, cached by prompt) and queues the job;
the stepping thread takes queued jobs into free rows of its `Pool` between steps, steps all rows
together, and every FLUSH_STEPS steps (or FLUSH_SECONDS) turns the drawn ids into text, looks
for stop strings and posts the pieces to the requests' sinks in the event loop. A job leaves
when it has its `max_tokens`, meets a stop string, or is cancelled (its client went away or
read too slowly); its row is free for the next step. Each job draws with its own generator,
seeded as `charrnn sample --random-seed S` seeds one sample (choice k: S + k), so its text does
not depend on who else is being served.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from charrnn_cli import console
from charrnn_cli.sampling.generator import SamplingModel
from charrnn_cli.sampling.pool import Joiner, Pool
from charrnn_cli.sampling.samples import first_char
from charrnn_cli.sampling.start import prime
from charrnn_cli.sampling.strategy import Strategy
from charrnn_cli.serve.jobs import Job, Sink, Update, deliver, piece, take
from charrnn_cli.serve.logprobs import Logprobs
from charrnn_cli.serve.protocol import ApiError, Completion, Limits
from charrnn_cli.serve.stops import Stops
from charrnn_cli.vocab import Utf8Bytes

FLUSH_STEPS = 16  # text is posted at least every this many steps...
FLUSH_SECONDS = 0.02  # ...or this often
PRIMED = 256  # prompts whose primed state is kept (by a digest: a prompt may be 64 Ki characters)


class Batcher:
    """The streams of one model, stepped together by one thread."""

    def __init__(self, sm: SamplingModel, limits: Limits) -> None:
        self.sm, self.limits = sm, limits
        self.pool = Pool(sm.model, limits.max_streams)
        self.jobs: list[Job] = []  # by row
        C = limits.max_streams
        self.hist = np.zeros((C, FLUSH_STEPS), np.int64)  # ids drawn since the last flush
        self.since = np.zeros(C, np.int64)  # where each row's unflushed ids begin in hist
        self.remaining = np.zeros(C, np.int64)  # characters each row still has to make
        self.t, self.last_flush = 0, time.monotonic()
        self.logprobs = Logprobs(sm.vocab)
        self.scoring = 0  # jobs in the pool that asked for logprobs
        self.ready: deque[tuple[Job, Joiner]] = deque()  # primed, waiting for a row
        self.cancels: deque[Job] = deque()
        self.cond = threading.Condition()
        self.admitted = 0  # jobs submitted and not yet ended
        self.stopping = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.primer = ThreadPoolExecutor(1, thread_name_prefix="charrnn-primer")
        self.primed: OrderedDict[bytes, tuple[np.ndarray, object]] = OrderedDict()
        self.thread = threading.Thread(target=self._run, name="charrnn-batcher", daemon=True)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.thread.start()

    @property
    def load(self) -> tuple[int, int]:
        """Streams stepping, and streams waiting."""
        return self.pool.n, max(0, self.admitted - self.pool.n)

    def submit(self, completion: Completion, ids_of: list[list[int]]) -> Sink:
        """Queue a request's choices (in the event loop); a 503 when the server is full."""
        cap = self.limits.max_streams + self.limits.max_queue
        k = completion.choices
        with self.cond:
            if self.stopping:
                raise ApiError(503, "the server is shutting down", None, "shutting_down")
            if self.admitted + k > cap:
                raise ApiError(
                    503, f"the server is full ({self.admitted} streams); retry shortly", None,
                    "server_full",
                )  # fmt: skip
            self.admitted += k
        sink = Sink(k, self.limits.buffer, self.cancel, completion.stream)
        stops = Stops(completion.stop) if completion.stop else None  # one per request
        index = 0
        for request, ids in zip(completion.requests, ids_of, strict=True):
            for j in range(request.num):
                seed = None if request.random_seed is None else request.random_seed + j
                decoder = Utf8Bytes() if self.sm.kind == "bytes" else None
                job = Job(index, sink, request, ids, seed, stops, completion.logprobs,
                          completion.stream, decoder)  # fmt: skip
                sink.jobs.append(job)
                index += 1
                if request.length == 0:
                    self._ended(job)
                    sink.put(Update(job.index, "", job.scores, "length"))
                else:
                    self.primer.submit(self._prime, job)
        return sink

    def cancel(self, sink: Sink) -> None:
        """Free the request's streams at the next step (in the event loop)."""
        for job in sink.jobs:
            job.cancelled = True
        with self.cond:
            self.cancels.extend(sink.jobs)
            self.cond.notify()

    def stop(self) -> None:
        """End every stream where it stands and stop the threads (from any thread)."""
        with self.cond:
            self.stopping = True
            self.cond.notify()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)
        self.primer.shutdown(wait=False)  # what it still holds ends at once, each posted

    def _ended(self, job: Job) -> None:
        job.done = True
        with self.cond:
            self.admitted -= 1

    def _prime(self, job: Job) -> None:
        """(primer thread) Feed the prompt, draw a first character when there is none, queue."""
        try:
            if job.cancelled or self.stopping:
                self._ended(job)
                self._post([(job.sink, Update(job.index, "", None, "stop"))])
                return
            if job.stops is not None:
                job.stops.tables  # noqa: B018 (built here, once a request, off the loop)
            rng = np.random.default_rng(job.seed)
            ids = job.prompt_ids
            if not ids:  # as `sample` does: a first character from the corpus's frequencies
                first = first_char(rng, self.sm.unigram, len(self.sm.vocab))
                ids, job.drawn = [first], 1
                if job.scores is not None:  # drawn, not scored
                    job.scores.add(first, math.nan, [0] * job.scores.k, [0.0] * job.scores.k)
                head = self.sm.vocab[first]
                if take(job, head if job.decoder is None else job.decoder.feed(head)):
                    self._ended(job)  # the first character is a stop string: nothing more
                    self._post([(job.sink, piece(job, final=True, finish="stop"))])
                    return
            logits, h = self._primed(ids)
            s = job.request
            strategy = Strategy(s.effective_temperature, s.top_k, s.top_p)
            with self.cond:
                self.ready.append((job, Joiner(logits, h, rng, strategy)))
                self.cond.notify()
        except Exception as exc:  # a bug: end this request, keep serving
            console.error(f"internal error priming a prompt: {type(exc).__name__}: {exc}")
            self._ended(job)
            self._post([(job.sink, Update(job.index, "", None, "stop"))])

    @torch.inference_mode()
    def _primed(self, ids: list[int]) -> tuple[np.ndarray, object]:
        key = hashlib.blake2b(np.asarray(ids, np.int64).tobytes(), digest_size=16).digest()
        if key in self.primed:
            self.primed.move_to_end(key)
            return self.primed[key]
        start = prime(self.sm.model, torch.tensor([ids]))
        value = (start.logits[0].numpy().astype(np.float32), start.h)
        self.primed[key] = value
        if len(self.primed) > PRIMED:
            self.primed.popitem(last=False)
        return value

    def _run(self) -> None:
        with threadpool_limits(1):  # BLAS and OpenMP (the stepper's torch products)
            while self._wait():
                try:
                    self._admit()
                    if self.pool.n:
                        self._step()
                except Exception as exc:  # a bug: end the streams in flight, keep serving
                    console.error(f"internal error while sampling: {type(exc).__name__}: {exc}")
                    self._end_rows(list(range(self.pool.n)), "stop")
        self._end_rows(list(range(self.pool.n)), "stop")
        while self.ready:
            job, _ = self.ready.popleft()
            self._ended(job)
            self._post([(job.sink, Update(job.index, "", None, "stop"))])

    def _wait(self) -> bool:
        """Wait for work; False once stopping."""
        with self.cond:
            while not (self.ready or self.pool.n or self.cancels or self.stopping):
                self.cond.wait()
            return not self.stopping

    def _admit(self) -> None:
        """Drop cancelled jobs, and give queued ones the free rows."""
        while self.cancels:
            job = self.cancels.popleft()
            if job.row >= 0 and not job.done:
                self._remove(job.row)
                self._ended(job)
        while self.ready and self.pool.n < self.pool.capacity:
            job, joiner = self.ready.popleft()
            if job.cancelled:
                self._ended(job)
                continue
            job.row = self.pool.add(joiner)
            self.jobs.append(job)
            self.scoring += job.logprobs is not None
            self.remaining[job.row] = job.request.length - job.drawn
            self.since[job.row] = self.t
            if self.remaining[job.row] <= 0:
                self._end_rows([job.row], "length")

    def _step(self) -> None:
        n = self.pool.n
        wanted = self.logprobs.before(self.pool.logits[:n], self.jobs) if self.scoring else None
        ids = self.pool.step()
        if wanted is not None:
            self.logprobs.after(wanted, ids, self.jobs)
        self.hist[:n, self.t] = ids
        self.t += 1
        remaining = self.remaining[:n]
        remaining -= 1
        done = np.flatnonzero(remaining <= 0).tolist()
        if self.t == FLUSH_STEPS or time.monotonic() - self.last_flush >= FLUSH_SECONDS:
            self._flush(list(range(n)), done)
            self.t, self.last_flush = 0, time.monotonic()
            self.since[:n] = 0
        elif done:
            self._flush(done, done)

    def _flush(self, rows: list[int], done: list[int]) -> None:
        """Turn the rows' new ids into text, post it, and end the rows done or stopped."""
        vocab, updates, ended = self.sm.vocab, [], {}
        for r in rows:
            job = self.jobs[r]
            new = "".join([vocab[i] for i in self.hist[r, self.since[r] : self.t].tolist()])
            if job.decoder is not None:  # a byte run: whole characters only, until the end
                new = job.decoder.feed(new, final=r in done)
            self.since[r] = self.t
            finish = take(job, new)
            if finish is None and r in done:
                finish = "length"
            if finish is not None:
                ended[r] = finish
            elif job.stream and (posted := piece(job, final=False)).text:
                updates.append((job.sink, posted))
        self._post(updates)
        for r in sorted(ended, reverse=True):
            self._end_rows([r], ended[r])

    def _end_rows(self, rows: list[int], finish: str) -> None:
        """Post the rows' last pieces with `finish` and free them (highest row first)."""
        for r in sorted(rows, reverse=True):
            job = self.jobs[r]
            if job.decoder is not None and finish == "length":  # a cut-off character: U+FFFD
                finish = take(job, job.decoder.finish()) or finish
            self._post([(job.sink, piece(job, final=True, finish=finish))])
            self._remove(r)
            self._ended(job)

    def _remove(self, row: int) -> None:
        self.jobs[row].row = -1
        self.scoring -= self.jobs[row].logprobs is not None
        moved = self.pool.remove(row)
        if moved is not None:
            self.jobs[row] = job = self.jobs[moved]
            job.row = row
            self.hist[row] = self.hist[moved]
            self.since[row], self.remaining[row] = self.since[moved], self.remaining[moved]
        self.jobs.pop()

    def _post(self, updates: list[tuple[Sink, Update]]) -> None:
        if updates and self.loop is not None:
            try:
                self.loop.call_soon_threadsafe(deliver, updates)
            except RuntimeError:  # the loop has closed: nobody is listening
                pass
