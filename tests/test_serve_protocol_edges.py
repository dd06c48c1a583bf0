"""The server's request rules at their edges (found by `make mutate`): each refusal's exact
message, field and code; every cap allows its own value and refuses the next; the defaults a
body leaves out."""

from __future__ import annotations

import json

import pytest

from charrnn_cli.serve.protocol import ApiError, Limits, check_prompts, parse

LIMITS = Limits(max_tokens=500, max_prompt=50, max_choices=6)


def _parse(**body):
    return parse(json.dumps(body).encode(), LIMITS)


def _refused(raw: bytes) -> ApiError:
    with pytest.raises(ApiError) as info:
        parse(raw, LIMITS)
    assert info.value.status == 400 and str(info.value) == info.value.message
    return info.value


@pytest.mark.parametrize(
    "body, param, code, message",
    [
        ({"max_tokens": True}, "max_tokens", "invalid_type",
         "max_tokens must be an integer, not true"),
        ({"temperature": "hot"}, "temperature", "invalid_type",
         'temperature must be an integer or a number, not "hot"'),
        ({"model": 5}, "model", "invalid_type", "model must be a string, not 5"),
        ({"model": ["y" * 60]}, "model", "invalid_type",
         "model must be a string, not " + json.dumps(["y" * 60])[:40]),
        ({"prompt": []}, "prompt", "invalid_type",
         "prompt must be a string or a non-empty list of strings"),
        ({"prompt": "x" * 51}, "prompt", "prompt_too_long",
         "a prompt of 51 characters is over this server's 50"),
        ({"stop": [""]}, "stop", "invalid_type",
         "stop must be a non-empty string or a list of them"),
        ({"stop": list("abcde")}, "stop", "invalid_value", "stop takes at most 4 strings"),
        ({"max_tokens": 501}, "max_tokens", "invalid_value",
         "max_tokens is over this server's cap of 500"),
        ({"seed": -1}, "seed", "invalid_value", "seed must be 0 or more"),
        ({"logprobs": -1}, "logprobs", "invalid_value", "logprobs must be between 0 and 5"),
        ({"logprobs": 6}, "logprobs", "invalid_value", "logprobs must be between 0 and 5"),
        ({"tempurature": 1}, "tempurature", "unknown_field",
         "unrecognized request argument: tempurature"),
        ({"suffix": "x"}, "suffix", "unsupported", "suffix is not supported by this server"),
        ({"best_of": 2}, "best_of", "unsupported", "best_of is not supported by this server"),
        ({"presence_penalty": 0.5}, "presence_penalty", "unsupported",
         "presence_penalty is not supported by this server"),
        ({"frequency_penalty": 0.5}, "frequency_penalty", "invalid_value",
         "frequency_penalty is not supported by this server"),
    ],
)  # fmt: skip
def test_each_refusal_is_exactly_its_message_field_and_code(body, param, code, message):
    e = _refused(json.dumps({"prompt": "a", **body}).encode())
    assert (e.message, e.param, e.code) == (message, param, code)


def test_a_body_that_is_not_an_object_says_which_it_is():
    e = _refused(b"{not json")
    assert e.message.startswith("the body is not valid JSON: ") and e.param is None
    e = _refused(b"[1, 2]")
    assert (e.message, e.param, e.code) == ("the body must be a JSON object", None, "invalid_json")


@pytest.mark.parametrize(
    "body",
    [{"max_tokens": 500}, {"seed": 0}, {"logprobs": 0}, {"logprobs": 5}, {"prompt": "x" * 50},
     {"stop": list("abcd")}, {"best_of": 1}, {"presence_penalty": 0}, {"frequency_penalty": 0},
     {"suffix": None}, {"best_of": None}, {"frequency_penalty": None}],
)  # fmt: skip
def test_every_cap_allows_its_own_value(body):
    _parse(**{"prompt": "a", **body})


def test_what_a_body_leaves_out_takes_the_defaults():
    c = _parse()
    (r,) = c.requests
    assert (c.model, c.stream, c.logprobs, c.include_usage, c.stop) == (
        None,
        False,
        None,
        False,
        (),
    )
    assert (r.prompt, r.length, r.temperature, r.top_p, r.top_k) == ("", 16, 1.0, 1.0, None)
    assert (r.num, r.random_seed, r.echo) == (1, None, False)
    c = _parse(model="t", logprobs=2, top_k=1, echo=True, stream_options={})
    assert (c.model, c.logprobs, c.requests[0].top_k, c.requests[0].echo) == ("t", 2, 1, True)
    assert not c.include_usage
    assert _parse(top_k=0).requests[0].top_k is None  # 0 or -1: off, as vLLM takes it


def test_past_ten_unknown_characters_the_rest_are_counted():
    vocab = "ab"
    with pytest.raises(ApiError) as info:
        check_prompts(_parse(prompt="ab" + "0123456789"), vocab)
    e = info.value
    assert e.message.endswith("'9' (U+0039)") and " more" not in e.message
    assert (e.param, e.code) == ("prompt", "unknown_characters")
    with pytest.raises(ApiError) as info:
        check_prompts(_parse(prompt="0123456789xyz"), vocab)
    assert info.value.message.endswith("'9' (U+0039) and 3 more")
    assert "'x'" not in info.value.message
    with pytest.raises(ApiError) as info:
        check_prompts(_parse(prompt="0123456789x"), vocab)  # eleven: the first past ten
    assert info.value.message.endswith("'9' (U+0039) and 1 more")
