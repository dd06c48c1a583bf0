"""The HTTP side of `charrnn serve`: a Starlette app with OpenAI's completions routes.

`GET /v1/models` lists the models, `POST /v1/completions` answers a completion as one JSON
object or, with `stream`, as server-sent events ending `data: [DONE]`, `GET /health` says the
server is up and how busy, `GET /` is a page to play with. A request is read within the body
cap (413), checked (`protocol.parse`, 400), matched to a model (404), its prompt checked
against the model's characters (400) and handed to the model's `Batcher` (503 when full).
Every error, a route that does not exist included, is an OpenAI-shaped body. Nothing here
imports torch: the batchers are built by `serve.server`.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from charrnn_cli.serve import protocol
from charrnn_cli.serve.access import Access, Guard, drain
from charrnn_cli.serve.held import Scores, shaped, shaped_json
from charrnn_cli.serve.jobs import Sink
from charrnn_cli.serve.page import PAGE
from charrnn_cli.serve.protocol import ApiError, Completion, Limits

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from charrnn_cli.serve.batcher import Batcher

DISCONNECT_CHECK = 1.0  # seconds between checks that a non-streaming client is still there
WRITE_CHARS = 1 << 16  # a response is written in pieces of about this many characters


@dataclass
class Served:
    """A model the server answers for: its name, characters and batcher."""

    name: str
    vocab: str
    batcher: Batcher
    created: int = 0
    kind: str = "chars"  # or "bytes": the model reads UTF-8 bytes, a token is a byte
    ids: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ids = {c: i for i, c in enumerate(self.vocab)}

    def prompt_ids(self, completion: Completion) -> list[list[int]]:
        """Each prompt's ids; a 400 for characters a character model never saw, or for
        logprobs from a byte model (whose tokens are bytes, not characters)."""
        if self.kind == "bytes":
            if completion.logprobs is not None:
                raise ApiError(400, f"logprobs needs a model of characters; {self.name!r} "
                               "reads bytes", "logprobs", "unsupported")  # fmt: skip
            return [list(r.prompt.encode("utf-8")) for r in completion.requests]
        protocol.check_prompts(completion, self.vocab)
        return [[self.ids[c] for c in r.prompt] for r in completion.requests]


def build(models: list[Served], limits: Limits, access: Access | None = None) -> Guard:
    """The app for `models` (the first is the default), held to `limits`, behind `access`."""
    by_name = {m.name: m for m in models}

    async def completions(request: Request) -> Response:
        completion = protocol.parse(await _body(request, limits.max_body), limits)
        served = by_name.get(completion.model or models[0].name)
        if served is None:
            raise ApiError(
                404, f"the model {completion.model!r} does not exist; GET /v1/models lists them",
                "model", "model_not_found",
            )  # fmt: skip
        sink = served.batcher.submit(completion, served.prompt_ids(completion))
        meta = {"id": f"cmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": served.name}
        if completion.stream:
            return StreamingResponse(
                _events(sink, completion, meta, served.vocab), media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )  # fmt: skip
        return await _whole(request, sink, completion, meta, served.vocab)

    async def list_models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [_card(m) for m in models]})

    async def one_model(request: Request) -> Response:
        served = by_name.get(request.path_params["name"])
        if served is None:
            raise ApiError(404, "no such model", "model", "model_not_found")
        return JSONResponse(_card(served))

    async def health(request: Request) -> Response:
        busy = {
            m.name: dict(zip(("active", "waiting"), m.batcher.load, strict=True)) for m in models
        }
        return JSONResponse({"status": "ok", "models": busy})

    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE)

    routes = [
        Route("/", page),
        Route("/health", health),
        Route("/v1/models", list_models),
        Route("/v1/models/{name:path}", one_model),
        Route("/v1/completions", completions, methods=["POST"]),
    ]
    handlers: dict[Any, Any] = {ApiError: _api_error, HTTPException: _http_error}
    return Guard(Starlette(routes=routes, exception_handlers=handlers), access or Access())


def _card(m: Served) -> dict[str, Any]:
    return {"id": m.name, "object": "model", "created": m.created, "owned_by": "charrnn"}


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    headers = {"Retry-After": "1"} if exc.status in (429, 503) else None
    return JSONResponse(exc.body(), exc.status, headers=headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return await _api_error(request, ApiError(exc.status_code, message, None, code))


async def _body(request: Request, cap: int) -> bytes:
    """The request body, refused with a 413 once it is over `cap` bytes: the rest is read and
    discarded first (within bounds), so a client still sending reads the 413, not a reset."""
    too_big = ApiError(413, f"the request body is over this server's {cap} bytes", None,
                       "request_too_large")  # fmt: skip
    declared = request.headers.get("content-length", "")
    stream = request.stream()
    if declared.isdigit() and int(declared) > cap:
        await drain(stream, int(declared))
        raise too_big
    chunks, size = [], 0
    async for chunk in stream:
        size += len(chunk)
        if size > cap:
            await drain(stream)
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def _heads(completion: Completion) -> list[str]:
    """What each choice starts with: its prompt when echoed."""
    return [r.prompt if r.echo else "" for r in completion.requests for _ in range(r.num)]


async def _whole(
    request: Request, sink: Sink, completion: Completion, meta: dict[str, Any], vocab: str
) -> Response:
    """Wait for every choice (noticing a client that goes away) and answer them all."""
    heads = _heads(completion)
    texts, finish, made = list(heads), [None] * len(heads), [0] * len(heads)
    scores: list[Scores | None] = [None] * len(heads)
    while not sink.finished or sink.pending:
        try:
            updates = await asyncio.wait_for(sink.take(), DISCONNECT_CHECK)
        except asyncio.TimeoutError:  # (not yet the built-in TimeoutError on Python 3.10)
            if await request.is_disconnected():
                sink.fail("the client went away")
            continue
        for u in updates:  # a whole choice's text (and scores) come in its one last update
            texts[u.index] += u.text
            finish[u.index], made[u.index] = u.finish or finish[u.index], made[u.index] + u.made
            scores[u.index] = u.logprobs
    if sink.failed:
        raise ApiError(503, f"the completion was ended: {sink.failed}", None, "ended")
    usage = _usage(completion, sum(made))
    if completion.logprobs is None:
        choices = [{"text": text, "index": i, "logprobs": None, "finish_reason": finish[i]}
                   for i, text in enumerate(texts)]  # fmt: skip
        return JSONResponse({"object": "text_completion", **meta, "choices": choices,
                             "usage": usage})  # fmt: skip

    def pieces() -> Iterator[str]:  # written as made: never all of it as Python objects
        yield json.dumps({"object": "text_completion", **meta})[:-1] + ', "choices": ['
        for i, text in enumerate(texts):
            yield (", " if i else "") + '{"text": ' + json.dumps(text, ensure_ascii=False)
            yield f', "index": {i}, "logprobs": '
            yield from shaped_json(vocab, heads[i], scores[i] or Scores(0))
            yield f', "finish_reason": {json.dumps(finish[i])}}}'
            texts[i], scores[i] = "", None  # written: let them go
        yield '], "usage": ' + json.dumps(usage) + "}"

    return StreamingResponse(_batched(pieces()), media_type="application/json")


def _batched(pieces: Iterator[str]) -> Iterator[bytes]:
    """Pieces of text joined into writes of about WRITE_CHARS characters."""
    out, size = [], 0
    for piece in pieces:
        out.append(piece)
        size += len(piece)
        if size >= WRITE_CHARS:
            yield "".join(out).encode()
            out, size = [], 0
    yield "".join(out).encode()


def _usage(completion: Completion, made: int) -> dict[str, int]:
    prompt = sum(len(r.prompt) for r in completion.requests)
    return {"prompt_tokens": prompt, "completion_tokens": made, "total_tokens": prompt + made}


def _sse(value: Any) -> str:
    return f"data: {json.dumps(value, ensure_ascii=False)}\n\n"


async def _events(
    sink: Sink, completion: Completion, meta: dict[str, Any], vocab: str
) -> AsyncIterator[str]:
    """The completion as server-sent events, a chunk per choice per flush, then [DONE]; what
    is taken is written in pieces of about WRITE_CHARS characters, then dropped."""
    heads, made = _heads(completion), 0
    offsets = [0] * len(heads)
    scored = completion.logprobs is not None

    def chunk(i: int, text: str, scores: Scores | None, finish: str | None, head: str = "") -> str:
        lp = shaped(vocab, head, scores, offsets[i]) if scored else None
        choice = {"text": head + text, "index": i, "logprobs": lp, "finish_reason": finish}
        offsets[i] += len(head) + len(text)
        return _sse({"object": "text_completion", **meta, "choices": [choice]})

    try:
        out, size = [], 0
        for i, head in enumerate(heads):
            if head:  # an echoed prompt, written at once (a long one alone)
                out.append(chunk(i, "", None, None, head))
                size += len(out[-1])
                if size >= WRITE_CHARS:
                    yield "".join(out)
                    out, size = [], 0
        while updates := await sink.take():
            for u in updates:
                out.append(chunk(u.index, u.text, u.logprobs, u.finish))
                made, size = made + u.made, size + len(out[-1])
                if size >= WRITE_CHARS:
                    yield "".join(out)
                    out, size = [], 0
            yield "".join(out)
            out, size = [], 0
        if sink.failed:
            yield _sse(ApiError(503, f"the completion was ended: {sink.failed}").body())
        if completion.include_usage:
            yield _sse({"object": "text_completion", **meta, "choices": [],
                        "usage": _usage(completion, made)})  # fmt: skip
        yield "data: [DONE]\n\n"
    finally:
        if not sink.finished:
            sink.fail("the client went away")
