"""The server's side of OpenAI's `/v1/completions`: a JSON body read into a checked `Completion`,
and errors in OpenAI's shape. Torch-free.

A character model maps onto the protocol directly: a token is a character, `max_tokens` counts
characters, `logprobs` gives the likeliest characters at each position. Every sampling rule a
field shares with `charrnn sample` is checked by building the same `SampleRequest` the CLI
builds, so the rules live in one place; the rest (types, the server's caps) is checked here.
Each refusal is an `ApiError`: a status, one message, and the field it is about.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from charrnn_cli.errors import UsageError
from charrnn_cli.sampling.request import SampleRequest

# the CLI's option names in SampleRequest's messages, and the fields they are here
_FIELDS = {
    "--temperature": "temperature",
    "--top-k": "top_k",
    "--top-p": "top_p",
    "--len": "max_tokens",
    "--num": "n",
}
KNOWN = {
    "model", "prompt", "max_tokens", "temperature", "top_p", "top_k", "n", "stop", "seed",
    "stream", "stream_options", "logprobs", "echo", "user", "suffix", "best_of",
    "presence_penalty", "frequency_penalty",
}  # fmt: skip
_KIND_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
               dict: "an object"}  # fmt: skip
MAX_LOGPROBS = 5  # OpenAI's cap on the likeliest characters listed a position
MAX_STOPS = 4  # stop strings a request, as OpenAI allows
MAX_TEMPERATURE = 100.0  # as `charrnn sample --temperature` allows
# a request's memory bound (Limits.request_bytes): a character made costs at most its text (1-4
# bytes, in pieces), its logprobs (72 bytes at logprobs 5: serve.held.Scores) and its share of
# the answer being written; an echoed one, its copy in the choice's text (the prompt is shared,
# its logprobs are written a slice at a time); BASE_BYTES is what answering any request costs
BYTES_A_CHARACTER = 96
BYTES_ECHOED = 16
BASE_BYTES = 8 << 20


@dataclass(frozen=True)
class Limits:
    """What one server accepts: the caps a request is held to."""

    max_streams: int = 256  # streams stepped at once (one per choice)
    max_queue: int = 1024  # streams waiting beyond those; more is a 503
    max_tokens: int = 100_000  # characters a choice
    max_body: int = 1 << 20  # bytes of a request body; more is a 413
    max_prompt: int = 65_536  # characters of a prompt
    max_choices: int = 128  # n x prompts in one request
    buffer: int = 1 << 20  # characters a request may hold unread before it is dropped

    @property
    def request_bytes(self) -> int:
        """The most memory one request may take while it is served, by these caps
        (docs/serve.md): BYTES_A_CHARACTER for each character its choices may make, BYTES_ECHOED
        for each they may echo (a prompt no longer than the body), its body 16 times over
        (read, parsed, its stop strings' tables), and BASE_BYTES."""
        choices = min(self.max_choices, self.max_streams + self.max_queue)
        made = choices * self.max_tokens * BYTES_A_CHARACTER
        echoed = choices * min(self.max_prompt, self.max_body) * BYTES_ECHOED
        return made + echoed + 16 * self.max_body + BASE_BYTES


class ApiError(Exception):
    """A refusal, shaped as OpenAI's: {"error": {"message", "type", "param", "code"}}."""

    def __init__(
        self, status: int, message: str, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    @property
    def kind(self) -> str:
        if self.status in (429, 503):
            return "server_overloaded" if self.status == 503 else "rate_limit_error"
        return "server_error" if self.status >= 500 else "invalid_request_error"

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        }


@dataclass(frozen=True)
class Completion:
    """One checked `/v1/completions` request: a `SampleRequest` per prompt (each `n` choices)."""

    model: str | None
    requests: tuple[SampleRequest, ...]
    stop: tuple[str, ...] = ()
    stream: bool = False
    logprobs: int | None = None
    include_usage: bool = False

    @property
    def choices(self) -> int:
        return sum(r.num for r in self.requests)


def _bad(message: str, param: str | None, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, param, code)


def _typed(body: dict[str, Any], key: str, kinds: tuple[type, ...], default: Any) -> Any:
    """body[key] when it has one of `kinds` (a bool is no number), `default` when absent/null."""
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) != (bool in kinds) or not isinstance(value, kinds):
        names = " or ".join(_KIND_NAMES[k] for k in kinds)
        raise _bad(f"{key} must be {names}, not {json.dumps(value)[:40]}", key, "invalid_type")
    return value


def _prompts(body: dict[str, Any], limits: Limits) -> list[str]:
    prompt = body.get("prompt", "")
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise _bad(
            "prompt must be a string or a non-empty list of strings", "prompt", "invalid_type"
        )
    for p in prompts:
        if len(p) > limits.max_prompt:
            raise _bad(
                f"a prompt of {len(p)} characters is over this server's {limits.max_prompt}",
                "prompt",
                "prompt_too_long",
            )
    return prompts


def _stops(body: dict[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    stops = [] if stop is None else [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise _bad("stop must be a non-empty string or a list of them", "stop", "invalid_type")
    if len(stops) > MAX_STOPS:
        raise _bad(f"stop takes at most {MAX_STOPS} strings", "stop")
    return tuple(stops)


def _numbers(body: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """The numeric fields, typed and held to the server's caps (SampleRequest checks the rest)."""
    num = (int, float)
    max_tokens = _typed(body, "max_tokens", (int,), 16)
    if max_tokens > limits.max_tokens:
        raise _bad(f"max_tokens is over this server's cap of {limits.max_tokens}", "max_tokens")
    top_k = _typed(body, "top_k", (int,), None)
    seed = _typed(body, "seed", (int,), None)
    if seed is not None and seed < 0:
        raise _bad("seed must be 0 or more", "seed")
    logprobs = _typed(body, "logprobs", (int,), None)
    if logprobs is not None and not 0 <= logprobs <= MAX_LOGPROBS:
        raise _bad(f"logprobs must be between 0 and {MAX_LOGPROBS}", "logprobs")
    temperature = float(_typed(body, "temperature", num, 1.0))
    top_p = float(_typed(body, "top_p", num, 1.0))
    # JSON's parsers take NaN, Infinity and 1e999 (inf): no number a sampler can draw with
    for key, value in (("temperature", temperature), ("top_p", top_p)):
        if not math.isfinite(value):
            raise _bad(f"{key} must be a finite number, not {value}", key)
    if temperature > MAX_TEMPERATURE:
        raise _bad(f"temperature must be {MAX_TEMPERATURE:g} or less", "temperature")
    return {
        "length": max_tokens,
        "temperature": temperature,
        "top_p": top_p,
        "top_k": None if top_k in (-1, 0) else top_k,  # -1 or 0: off, as vLLM takes it
        "num": _typed(body, "n", (int,), 1),
        "random_seed": seed,
        "logprobs": logprobs,
    }


def parse(raw: bytes, limits: Limits) -> Completion:
    """A request body as a checked `Completion`; an `ApiError` (400) says what is wrong."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad(f"the body is not valid JSON: {exc}", None, "invalid_json") from None
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object", None, "invalid_json")
    unknown = sorted(set(body) - KNOWN)
    if unknown:
        raise _bad(f"unrecognized request argument: {unknown[0]}", unknown[0], "unknown_field")
    for key, off in (("suffix", None), ("best_of", 1), ("presence_penalty", 0)):
        if body.get(key, off) not in (off, None):
            raise _bad(f"{key} is not supported by this server", key, "unsupported")
    if body.get("frequency_penalty", 0) not in (0, None):
        raise _bad("frequency_penalty is not supported by this server", "frequency_penalty")
    model = _typed(body, "model", (str,), None)
    prompts, stops, nums = _prompts(body, limits), _stops(body), _numbers(body, limits)
    echo = _typed(body, "echo", (bool,), False)
    stream = _typed(body, "stream", (bool,), False)
    options = _typed(body, "stream_options", (dict,), {})
    logprobs = nums.pop("logprobs")
    if nums["num"] * len(prompts) > limits.max_choices:
        raise _bad(f"n x prompts is over this server's {limits.max_choices} choices", "n")
    try:
        requests = tuple(SampleRequest(prompt=p, echo=echo, **nums) for p in prompts)
    except UsageError as exc:
        message, param = str(exc), None
        for flag, field in _FIELDS.items():
            if flag in message:
                message, param = message.replace(flag, field), field
        raise _bad(message, param) from None
    return Completion(
        model, requests, stops, stream, logprobs, bool(options.get("include_usage", False))
    )


def check_prompts(completion: Completion, vocab: str) -> None:
    """Refuse, in one 400 naming them, prompt characters the model never saw."""
    seen = set(vocab)
    missing = sorted({c for r in completion.requests for c in r.prompt if c not in seen})
    if missing:
        shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise ApiError(
            400,
            f"the prompt has characters this model never saw: {shown}{more}",
            "prompt",
            "unknown_characters",
        )
