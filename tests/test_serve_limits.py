"""The server's limits hold without failing their user (issue 31, faults 6-9 and 17): a whole
answer larger than --max-unread is answered (the slow-reader rule is a stream's); logprobs are
held compactly and dropped once sent; stop strings cut where one first completes, the
unprompted first character included, holding back only what a stop may still claim, in linear
time; an over-size body gets a 413 the client reads; a tiny temperature is greedy without a
warning, a non-finite one a 400."""

from __future__ import annotations

import itertools
import json
import time
import urllib.error
import urllib.request
import warnings

import pytest

from charrnn_cli.sampling.request import SampleRequest
from charrnn_cli.sampling.strategy import Strategy
from charrnn_cli.serve.held import Scores
from charrnn_cli.serve.jobs import Job, piece, take
from charrnn_cli.serve.stops import Matcher, Stops
from tests.servetools import is_openai_error, joined, send_raw, server, tiny_home

CAPS = ["--max-streams", "4", "--max-queue", "12", "--max-tokens", "3000", "--max-body", "4096",
        "--max-unread", "1024"]  # fmt: skip


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tiny_home(tmp_path_factory.mktemp("limits"))


@pytest.fixture(scope="module")
def srv(home):
    with server(home, *CAPS) as s:
        yield s


# 6 ---------------------------------------------------------------------------------------------


def test_a_whole_answer_over_max_unread_is_answered(srv):
    status, js = srv.post({"prompt": "the ", "n": 4, "max_tokens": 3000, "seed": 1})
    assert status == 200, js  # 12,000 characters against --max-unread 1024
    assert [len(c["text"]) for c in js["choices"]] == [3000] * 4


# 7 ---------------------------------------------------------------------------------------------


def test_logprobs_are_held_compactly_and_dropped_once_sent():
    scores = Scores(5)
    for i in range(10_000):
        scores.add(i % 7, -1.5, [1, 2, 3, 4, 5], [-0.1, -0.2, -0.3, -0.4, -0.5])
    held = sum(a.buffer_info()[1] * a.itemsize for a in
               (scores.ids, scores.lps, scores.top_ids, scores.top_lps))  # fmt: skip
    assert held <= 10_000 * 80  # 72 bytes a position at k = 5
    job = Job(0, None, SampleRequest(length=100), [1], None, None, 5, True)  # type: ignore[arg-type]
    for _ in range(200):
        job.scores.add(1, -1.0, [1] * 5, [-1.0] * 5)  # type: ignore[union-attr]
        take(job, "x")
        sent = piece(job, final=False)
        assert len(sent.text) == len(sent.logprobs) == 1  # type: ignore[arg-type]
        assert len(job.scores) == 0 and len(job.scores.ids) <= 2  # type: ignore[union-attr,arg-type]


def test_a_logprobs_answer_has_every_position(srv):
    body = {"prompt": "the ", "n": 2, "max_tokens": 2500, "logprobs": 3, "echo": True, "seed": 2}
    status, js = srv.post(body)
    assert status == 200
    for c in js["choices"]:
        lp = c["logprobs"]
        assert "".join(lp["tokens"]) == c["text"] and len(c["text"]) == 2504
        assert lp["token_logprobs"][:4] == [None] * 4 and lp["top_logprobs"][:4] == [None] * 4
        assert all(len(t) == 3 for t in lp["top_logprobs"][4:])
        assert lp["text_offset"] == list(range(2504))
    streamed = joined(srv.post({**body, "stream": True})[1])
    for i, c in enumerate(js["choices"]):
        assert streamed[i]["text"] == c["text"] and streamed[i]["tokens"] == c["logprobs"]["tokens"]


# 8 ---------------------------------------------------------------------------------------------


def _cut(stops: tuple[str, ...], pieces: list[str]) -> int | None:
    """Where a text fed in `pieces` is cut (characters kept), or None."""
    m, size = Matcher(Stops(stops)), 0
    for p in pieces:
        at = m.feed(p)
        if at is not None:
            return size + at
        size += len(p)
    return None


def _splits(text: str) -> list[list[str]]:
    out = []
    for cuts in itertools.chain.from_iterable(
        itertools.combinations(range(1, len(text)), k) for k in range(min(4, len(text)))
    ):
        bounds = [0, *cuts, len(text)]
        out.append([text[a:b] for a, b in itertools.pairwise(bounds)])
    return out


@pytest.mark.parametrize(
    "stops, text, want",
    [
        (("z  ", " "), "az bc", 2),  # " " completes first, though "z  " starts first
        ((" ",), "az bc", 2),
        (("abcd", "bc"), "xabcd", 2),  # "bc" ends first
        (("abc", "bc"), "xabc", 1),  # both end at once: the longer, the text before it
        (("aab",), "aaab", 1),  # a partial match that fails and restarts inside itself
        (("abab",), "abaabab", 3),
        (("xyz",), "xyxy", None),
    ],
)
def test_the_stop_that_completes_first_cuts_in_any_pieces(stops, text, want):
    for pieces in _splits(text):
        assert _cut(stops, pieces) == want, pieces


def test_the_cut_through_the_server_is_where_a_stop_completes_first(srv):
    for seed in range(50):  # a seeded text with a space inside it
        body = {"prompt": "the ", "max_tokens": 80, "seed": seed}
        t = srv.post(body)[1]["choices"][0]["text"]
        i = t.find(" ", 1)
        if 0 < i < len(t) - 3:
            break
    for stream in (False, True):
        body = {**body, "stream": stream}
        for stop in ([t[i - 1 : i + 3], " "], [" "], [t[i - 1 : i + 30], " "]):
            status, js = srv.post({**body, "stop": stop})
            got = joined(js)[0] if stream else js["choices"][0]
            assert (got["text"], got["finish_reason"]) == (t[:i], "stop"), (stop, stream)


def test_the_unprompted_first_character_meets_stop_when_max_tokens_is_1(srv):
    for seed in range(4):
        body = {"prompt": "", "max_tokens": 1, "seed": seed}
        first = srv.post(body)[1]["choices"][0]["text"]
        assert len(first) == 1
        for stream in (False, True):
            status, js = srv.post({**body, "stop": [first], "stream": stream})
            choice = joined(js)[0] if stream else js["choices"][0]
            assert (choice["text"], choice["finish_reason"]) == ("", "stop"), (seed, stream)


def test_a_long_stop_string_holds_back_only_what_it_may_claim():
    job = Job(0, None, SampleRequest(length=10**6), [1], None, Stops(("q" * 5000,)), None, True)  # type: ignore[arg-type]
    sent = ""
    for _ in range(100):
        take(job, "abcdefghij")
        sent += piece(job, final=False).text
    assert len(sent) == 1000  # no "q": nothing held back
    take(job, "qqq")
    assert piece(job, final=False).text == "" and job.holdback == 3


def test_stop_strings_are_matched_in_linear_time():
    """A 400,000-character text that keeps matching a 200,000-character stop string's start,
    in flush-sized pieces: rescanning what is held back each flush would take minutes."""
    stops = Stops(("a" * 200_000 + "b", "a" * 199_999 + "c"))
    job = Job(0, None, SampleRequest(length=10**6), [1], None, stops, None, True)  # type: ignore[arg-type]
    text = "a" * 16
    started = time.monotonic()
    for _ in range(25_000):
        assert take(job, text) is None
        piece(job, final=False)
    assert job.holdback == 200_000 and len(job.text) == 200_000
    assert take(job, "c") == "stop" and job.size == 200_001
    assert time.monotonic() - started < 20


# 9 ---------------------------------------------------------------------------------------------


def test_an_oversize_body_gets_a_413_the_client_reads(srv):
    url = f"http://127.0.0.1:{srv.port}/v1/completions"
    body = b'{"prompt": "' + b"a" * 20_000_000 + b'"}'
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=60)
    assert caught.value.code == 413 and is_openai_error(caught.value.read())


@pytest.mark.parametrize("how", ["declared", "chunked", "refused"])
def test_a_client_writing_its_whole_body_first_reads_the_answer(srv, how):
    size = 8_000_000
    kind = "text/plain" if how == "refused" else "application/json"
    length = "Transfer-Encoding: chunked" if how == "chunked" else f"Content-Length: {size}"
    head = (f"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
            f"Content-Type: {kind}\r\n{length}\r\n\r\n").encode()  # fmt: skip
    answer = send_raw(srv.port, head, size, chunked=how == "chunked")
    status = 415 if how == "refused" else 413
    assert answer.startswith(f"HTTP/1.1 {status}".encode()), answer[:100]
    assert is_openai_error(answer.split(b"\r\n\r\n", 1)[1])


# 17 --------------------------------------------------------------------------------------------


def test_a_tiny_temperature_is_greedy():
    assert Strategy(1e-39).greedy and Strategy(0.0).greedy and not Strategy(1e-3).greedy
    assert SampleRequest(temperature=1e-39).effective_temperature == 0.0


@pytest.mark.parametrize("num", ["1", "3"])
def test_sample_at_a_tiny_temperature_is_greedy_without_a_warning(cli, home, monkeypatch, num):
    monkeypatch.setenv("CHARRNN_HOME", str(home))
    common = ["sample", "--run", "t", "--seed", "the ", "--len", "80", "--num", num]
    greedy = cli(*common, "--greedy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning (overflow) fails the command
        tiny = cli(*common, "--temperature", "1e-39", "--random-seed", "1")
    assert tiny.code == 0 and "warning" not in tiny.err.lower()
    assert tiny.out == greedy.out and greedy.out.replace("\n", "")  # not newlines only


def test_the_server_at_a_tiny_temperature_is_greedy(srv):
    body = {"prompt": "the ", "max_tokens": 60, "n": 2, "seed": 3}
    tiny = srv.post({**body, "temperature": 1e-39})[1]["choices"]
    greedy = srv.post({**body, "temperature": 0})[1]["choices"]
    assert [c["text"] for c in tiny] == [c["text"] for c in greedy]
    assert greedy[0]["text"].strip()


@pytest.mark.parametrize("value", [b"Infinity", b"-Infinity", b"NaN", b"1e999", b"101"])
def test_the_server_refuses_a_temperature_that_is_not_finite(srv, value):
    for field in (b"temperature", b"top_p"):
        raw = b'{"prompt": "the ", "' + field + b'": ' + value + b"}"
        status, _, answer = srv.request("POST", "/v1/completions", raw)
        assert status == 400 and is_openai_error(answer), (field, value)
        assert json.loads(answer)["error"]["param"] == field.decode()
