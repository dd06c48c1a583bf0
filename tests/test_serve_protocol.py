"""The server's request rules (torch-free): a body becomes a checked `Completion` or one
OpenAI-shaped 400 naming the field; the sampling rules are SampleRequest's own; a sink drops a
reader that leaves too much unread."""

from __future__ import annotations

import asyncio
import json

import pytest

from charrnn_cli.serve.jobs import Sink, Update
from charrnn_cli.serve.protocol import ApiError, Limits, check_prompts, parse

LIMITS = Limits(max_tokens=500, max_prompt=50, max_choices=6)


def _parse(**body) -> object:
    return parse(json.dumps(body).encode(), LIMITS)


def test_defaults_and_fields_map_onto_sample_requests():
    c = _parse(prompt=["ab", "c"], n=3, seed=4, temperature=0.5, top_k=-1, stop="\n", echo=True)
    assert c.choices == 6 and c.stop == ("\n",) and c.stream is False and c.logprobs is None
    r = c.requests[1]
    assert (r.prompt, r.num, r.random_seed, r.temperature, r.top_k, r.echo) == (
        "c", 3, 4, 0.5, None, True,
    )  # fmt: skip
    assert _parse(prompt="x").requests[0].length == 16  # OpenAI's default max_tokens
    assert _parse(stream=True, stream_options={"include_usage": True}).include_usage


@pytest.mark.parametrize(
    "body, param, says",
    [
        ({"max_tokens": -1}, "max_tokens", "max_tokens must be 0 or more"),
        ({"max_tokens": 501}, "max_tokens", "cap of 500"),
        ({"max_tokens": True}, "max_tokens", "an integer"),
        ({"temperature": -0.5}, "temperature", "temperature must be 0 or more"),
        ({"temperature": "hot"}, "temperature", "a number"),
        ({"top_p": 0}, "top_p", "top_p must be inside"),
        ({"top_k": 0.5}, "top_k", "an integer"),
        ({"n": 0}, "n", "n must be 1 or more"),
        ({"n": 4, "prompt": ["a", "b"]}, "n", "6 choices"),
        ({"seed": -3}, "seed", "0 or more"),
        ({"logprobs": 6}, "logprobs", "between 0 and 5"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "at most 4"),
        ({"stop": [""]}, "stop", "non-empty"),
        ({"prompt": []}, "prompt", "non-empty list"),
        ({"prompt": [1, 2]}, "prompt", "list of strings"),
        ({"prompt": "x" * 51}, "prompt", "over this server's 50"),
        ({"stream": "yes"}, "stream", "a boolean"),
        ({"best_of": 3}, "best_of", "not supported"),
        ({"tempurature": 1}, "tempurature", "unrecognized"),
    ],
)
def test_a_bad_field_is_one_400_naming_it(body, param, says):
    with pytest.raises(ApiError) as info:
        _parse(**body)
    e = info.value
    assert e.status == 400 and e.param == param and says in e.message
    assert set(e.body()["error"]) == {"message", "type", "param", "code"}


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe", b""])
def test_a_body_that_is_not_a_json_object_is_a_400(raw):
    with pytest.raises(ApiError) as info:
        parse(raw, LIMITS)
    assert info.value.status == 400 and info.value.code == "invalid_json"


def test_unknown_prompt_characters_are_named_in_one_400():
    with pytest.raises(ApiError) as info:
        check_prompts(_parse(prompt=["ab\u4e2d", "z\u00e9b"]), "abz")
    assert info.value.status == 400 and info.value.code == "unknown_characters"
    assert "'\u00e9' (U+00E9), '\u4e2d' (U+4E2D)" in info.value.message
    check_prompts(_parse(prompt="abz"), "abz")  # every character known: no error


def test_a_sink_drops_a_reader_that_leaves_too_much_unread():
    async def scenario() -> tuple[list[Sink], list[Update]]:
        cancelled: list[Sink] = []
        sink = Sink(choices=2, buffer=10, cancel=cancelled.append)
        sink.put(Update(0, "abcdef"))
        first = await sink.take()  # read: the unread count starts again
        sink.put(Update(0, "abcdef"))
        sink.put(Update(1, "ghijk", finish="length"))  # 11 unread: too slow
        sink.put(Update(0, "more"))  # after the drop: ignored
        assert sink.failed and sink.finished
        return cancelled, first + await sink.take()

    cancelled, seen = asyncio.run(scenario())
    assert len(cancelled) == 1
    assert [u.text for u in seen] == ["abcdef", "abcdef", "ghijk"]
