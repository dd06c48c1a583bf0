"""Every request field and combination against the server's memory and time (issue 31, the
class behind faults 6-9): the worst case each cap allows (every choice the server holds, every
character max_tokens allows, logprobs 5, the longest prompt the body allows echoed into each
choice, stop strings, streamed or whole) stays within `Limits.request_bytes`, the bound
docs/serve.md states, and answers in time; a sweep of every combination of small values is a
200 whose choices keep the fields' promises; every bad value is one OpenAI-shaped 4xx. Small
caps keep the worst case quick on a tiny model."""

from __future__ import annotations

import itertools
import json
import time

import pytest

from charrnn_cli.serve.protocol import Limits
from tests.servetools import is_openai_error, joined, server, tiny_home

STREAMS, QUEUE, TOKENS, BODY = 4, 12, 2000, 8192
LIMITS = Limits(max_streams=STREAMS, max_queue=QUEUE, max_tokens=TOKENS, max_body=BODY,
                buffer=2048)  # fmt: skip
CAPS = ["--max-streams", str(STREAMS), "--max-queue", str(QUEUE), "--max-tokens", str(TOKENS),
        "--max-body", str(BODY), "--max-unread", "2048"]  # fmt: skip
CHOICES = STREAMS + QUEUE  # the most a request can have at once (n x prompts)
SECONDS = 60  # the most a worst-case request may take here (its work is linear in its caps)
TEXT = "the cat sat on the mat. a dog ran to the log. we see the sea and the sky. "


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with server(tiny_home(tmp_path_factory.mktemp("class")), *CAPS) as s:
        for stream in (False, True):  # what the first requests allocate once (the pool...)
            body = {"prompt": "the ", "n": CHOICES, "max_tokens": 50, "logprobs": 5, "echo": True}
            assert s.post({**body, "stream": stream})[0] == 200
        yield s


def _longest(body: dict, room: int) -> str:
    """The longest prompt of TEXT's characters that keeps `body` within `room` bytes."""
    left = room - len(json.dumps({**body, "prompt": ""}).encode())
    return (TEXT * (left // len(TEXT) + 1))[:left]


WORST = [
    dict(stream=stream, logprobs=logprobs, echo=echo)
    for stream, logprobs, echo in itertools.product((False, True), (None, 5), (False, True))
]


@pytest.mark.parametrize("fields", WORST, ids=lambda f: "-".join(f"{k}={v}" for k, v in f.items()))
def test_the_worst_case_each_cap_allows_stays_within_the_stated_bound(srv, fields):
    # stop strings that never complete, one of them a long one the text keeps half-matching
    stops = ["@", "~~", "zzz", "the cat sat on the mat. a dog ran to the m@"]
    body = {"n": CHOICES, "max_tokens": TOKENS, "seed": 5, "stop": stops, **fields}
    body["prompt"] = _longest(body, BODY)
    shapes = [body]
    if fields == {"stream": False, "logprobs": 5, "echo": True}:  # also: as many prompts
        each = {**body, "n": 1, "prompt": [""] * CHOICES}
        room = (BODY - len(json.dumps(each).encode())) // CHOICES
        shapes.append({**each, "prompt": [(TEXT * (room // len(TEXT) + 1))[:room]] * CHOICES})
    for b in shapes:
        assert len(json.dumps(b).encode()) <= BODY
        base = srv.reset_peak()
        started = time.monotonic()
        status, answer = srv.post(b)
        took = time.monotonic() - started
        grew = srv.vm("VmHWM") - base
        assert status == 200, answer
        choices = joined(answer) if b["stream"] else {c["index"]: c for c in answer["choices"]}
        assert len(choices) == CHOICES
        assert all(c["finish_reason"] == "length" for c in choices.values())
        print(
            f"{fields}: {grew / 2**20:.1f} MB of {LIMITS.request_bytes / 2**20:.1f}, {took:.1f} s"
        )
        assert grew <= LIMITS.request_bytes, f"{grew / 2**20:.1f} MB"
        assert took < SECONDS


PROMPTS = ["", "the ", ["a ", "the "]]
STOPS = [None, [" "], ["the", "zzz", "t", "at "]]
SWEEP = list(itertools.product((1, 3), PROMPTS, (0, 1, 9), (None, 2), (False, True), STOPS))


def test_every_combination_of_small_values_is_a_200_that_keeps_its_promises(srv):
    for n, prompt, max_tokens, logprobs, echo, stop in SWEEP:
        body = {"n": n, "prompt": prompt, "max_tokens": max_tokens, "logprobs": logprobs,
                "echo": echo, "stop": stop, "seed": 7}  # fmt: skip
        status, whole = srv.post(body)
        assert status == 200, (body, whole)
        status, evs = srv.post({**body, "stream": True})
        assert status == 200 and evs[-1] == "[DONE]", (body, evs[-1:])
        streamed = joined(evs)
        prompts = [prompt] if isinstance(prompt, str) else prompt
        assert len(whole["choices"]) == len(streamed) == n * len(prompts)
        for c in whole["choices"]:
            _keeps_promises(body, prompts[c["index"] // n], c)
            assert streamed[c["index"]]["text"] == c["text"], body  # streamed = whole
            assert streamed[c["index"]]["finish_reason"] == c["finish_reason"]
            if logprobs is not None:
                assert streamed[c["index"]]["tokens"] == c["logprobs"]["tokens"]


def _keeps_promises(body: dict, prompt: str, c: dict) -> None:
    text = c["text"]
    if body["echo"]:
        assert text.startswith(prompt)
        text = text[len(prompt) :]
    assert len(text) <= body["max_tokens"] and c["finish_reason"] in ("length", "stop")
    if c["finish_reason"] == "length":
        assert len(text) == body["max_tokens"]
    for s in body["stop"] or []:
        assert s not in text, (body, text)
    if body["logprobs"] is not None:
        lp = c["logprobs"]
        assert "".join(lp["tokens"]) == c["text"] and len(lp["token_logprobs"]) == len(c["text"])
        assert lp["text_offset"] == list(range(len(c["text"])))
        scored = lp["top_logprobs"][len(c["text"]) - len(text) :]
        assert all(t is None or len(t) == body["logprobs"] for t in scored)
    else:
        assert c["logprobs"] is None


BAD = {
    "n": [0, -1, "3", 1.5, True, LIMITS.max_choices + 1],
    "max_tokens": [-1, TOKENS + 1, 1e3, "5", [5]],
    "logprobs": [-1, 6, True, 2.0],
    "echo": ["yes", 1],
    "stop": [["a"] * 5, [""], "", 5, [1], {"a": 1}],
    "prompt": [[], [1], 5, "the \u4e2d", {"a": "b"}, ["a"] * (LIMITS.max_choices + 1)],
    "temperature": [-1, 101, "hot", float("inf"), float("nan")],
    "top_p": [0, 2, -0.5, float("inf")],
    "top_k": [-2, 0.5],
    "seed": [-1, "x", 1.5],
    "stream": ["yes", 1],
    "stream_options": ["x", [1]],
    "model": ["nope", 5],
    "suffix": ["x"],
    "best_of": [2],
    "presence_penalty": [0.5],
    "frequency_penalty": [1],
    "logit_bias": [{"1": 2}],
}


@pytest.mark.parametrize("field", sorted(BAD))
def test_every_bad_value_is_one_openai_shaped_4xx(srv, field):
    for value in BAD[field]:
        raw = json.dumps({"prompt": "the ", "max_tokens": 3, field: value}).encode()
        status, _, answer = srv.request("POST", "/v1/completions", raw)
        assert 400 <= status < 500 and is_openai_error(answer), (field, value, status, answer)


@pytest.mark.parametrize(
    "raw", [b"{not json", b"[]", b'"x"', b"", b"\xff\xfe", b'{"prompt": "' + b"a" * BODY + b'"}']
)
def test_a_body_that_is_no_request_is_one_openai_shaped_4xx(srv, raw):
    status, _, answer = srv.request("POST", "/v1/completions", raw)
    assert 400 <= status < 500 and is_openai_error(answer), (raw[:20], status)
