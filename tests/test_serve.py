"""`charrnn serve` through HTTP: one tiny run, one real server on a free loopback port for the
module. Greedy and seeded completions are `charrnn sample`'s text, alone or among other
streams; streaming joins to the whole text; n, echo, stop and logprobs; OpenAI-shaped 4xx for
bad requests, 413 and 503 at the caps; a client that goes away frees its stream; SIGTERM stops
the server at once, exiting 143."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import spawn, train_tiny

# --max-tokens: long enough that a stream nobody frees outlasts any test's wait for it
CAPS = ["--max-streams", "8", "--max-queue", "4", "--max-tokens", "1000000", "--max-body", "4096"]
LONG = 1_000_000  # a stream of this length runs for minutes: only a cancel ends it soon


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """Two tiny trained runs for the module: `t` reads characters, `tb` bytes."""
    folder = tmp_path_factory.mktemp("serve")
    train_tiny(folder, "t")
    train_tiny(folder, "tb", "--vocab", "bytes")
    return folder / "home"


def _start(home: Path, *extra: str) -> tuple[subprocess.Popen, int]:
    proc = spawn("serve", "--port", "0", *extra, env={"CHARRNN_HOME": str(home)})
    line = proc.stderr.readline()  # "serving t, tb at http://127.0.0.1:PORT/ ..."
    found = re.search(r"127\.0\.0\.1:(\d+)/", line)
    assert found, line + proc.stderr.read() if proc.poll() is not None else line
    return proc, int(found.group(1))


@pytest.fixture(scope="module")
def port(home):
    proc, port = _start(home, "--run", "t", "--run", "tb", *CAPS)
    yield port
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)


def _request(port: int, method: str, path: str, body: bytes | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request(method, path, body, {"Content-Type": "application/json"})
    return conn, conn.getresponse()


def post(port: int, **body) -> tuple[int, dict]:
    conn, r = _request(port, "POST", "/v1/completions", json.dumps(body).encode())
    try:
        return r.status, json.loads(r.read())
    finally:
        conn.close()


def text(port: int, **body) -> str:
    status, js = post(port, **body)
    assert status == 200, js
    return js["choices"][0]["text"]


def events(port: int, **body) -> list:
    """A streamed completion's events in order ("[DONE]" last)."""
    raw_body = json.dumps({**body, "stream": True}).encode()
    conn, r = _request(port, "POST", "/v1/completions", raw_body)
    try:
        assert r.status == 200 and r.getheader("Content-Type").startswith("text/event-stream")
        raw = r.read().decode()
    finally:
        conn.close()
    datas = [block[6:] for block in raw.split("\n\n") if block.startswith("data: ")]
    return [d if d == "[DONE]" else json.loads(d) for d in datas]


def test_models_health_and_the_page(port):
    conn, r = _request(port, "GET", "/v1/models")
    assert [m["id"] for m in json.loads(r.read())["data"]] == ["t", "tb"]  # t: the default
    conn, r = _request(port, "GET", "/health")
    assert r.status == 200 and json.loads(r.read())["status"] == "ok"
    conn, r = _request(port, "GET", "/")
    page = r.read().decode()
    assert r.status == 200 and "/v1/completions" in page and "<textarea" in page
    assert "http://" not in page and "https://" not in page  # loads nothing from elsewhere


@pytest.mark.parametrize(
    "fields, options",
    [
        ({"temperature": 0}, ["--greedy"]),
        ({"temperature": 0.8, "seed": 3}, ["--temperature", "0.8", "--random-seed", "3"]),
        ({"temperature": 1.2, "top_k": 3, "seed": 5},
         ["--temperature", "1.2", "--top-k", "3", "--random-seed", "5"]),
    ],
)  # fmt: skip
def test_a_completion_is_charrnn_sample_s_text(port, home, cli, monkeypatch, fields, options):
    monkeypatch.setenv("CHARRNN_HOME", str(home))
    want = cli("sample", "--run", "t", "--seed", "the ", "--len", "120", "--no-echo-seed", *options)
    assert want.code == 0
    assert text(port, model="t", prompt="the ", max_tokens=120, **fields) == want.out


def test_a_byte_model_reads_any_prompt_and_is_charrnn_sample_s_text(port, home, cli, monkeypatch):
    monkeypatch.setenv("CHARRNN_HOME", str(home))
    options = ["--seed", "the \u00e9", "--len", "150", "--random-seed", "4", "--no-echo-seed"]
    want = cli("sample", "--run", "tb", *options)
    assert want.code == 0
    got = text(port, model="tb", prompt="the \u00e9", max_tokens=150, seed=4)
    assert got == want.out
    streamed = events(port, model="tb", prompt="the \u00e9", max_tokens=150, seed=4)
    assert "".join(e["choices"][0]["text"] for e in streamed[:-1]) == want.out
    status, js = post(port, model="tb", prompt="a", logprobs=1)  # tokens are bytes: refused
    assert status == 400 and js["error"]["param"] == "logprobs"


def test_a_seed_gives_the_same_text_alone_and_among_other_streams(port):
    seeded = dict(prompt="a ", max_tokens=300, temperature=1.0, seed=11)
    alone = text(port, **seeded)
    others = [_open_stream(port, prompt="we", max_tokens=LONG) for _ in range(5)]
    try:
        _wait_active(port, lambda n: n == 5)  # all five step before the seeded one comes
        among = text(port, **seeded)
        assert _active(port) >= 5  # and still do after it ended (it may not be freed yet)
    finally:
        for conn in others:
            conn.sock.close()
            conn.close()
    _wait_active(port, lambda n: n == 0)
    assert len(alone) == 300 and among == alone


def test_a_stream_comes_in_chunks_that_join_to_the_whole_text(port):
    whole = text(port, prompt="the ", max_tokens=200, seed=2)
    usage = {"include_usage": True}
    got = events(port, prompt="the ", max_tokens=200, seed=2, stream_options=usage)
    assert got[-1] == "[DONE]" and got[-2]["usage"]["completion_tokens"] == 200
    chunks = [e["choices"][0] for e in got[:-2]]
    assert len(chunks) >= 3 and "".join(c["text"] for c in chunks) == whole
    assert chunks[-1]["finish_reason"] == "length"
    assert all(c["finish_reason"] is None for c in chunks[:-1])


def test_n_prompts_echo_and_logprobs(port):
    status, js = post(port, prompt=["the ", "a "], n=2, max_tokens=7, echo=True, logprobs=2, seed=1)
    assert status == 200 and [c["index"] for c in js["choices"]] == [0, 1, 2, 3]
    first, third = js["choices"][0], js["choices"][2]
    assert first["text"].startswith("the ") and third["text"].startswith("a ")
    assert len(first["text"]) == 4 + 7 and js["usage"]["completion_tokens"] == 28
    lp = first["logprobs"]
    assert "".join(lp["tokens"]) == first["text"] and lp["token_logprobs"][:4] == [None] * 4
    assert all(v <= 0 for v in lp["token_logprobs"][4:]) and len(lp["top_logprobs"][5]) == 2
    assert first["text"] != js["choices"][1]["text"]  # choice k draws with seed + k


def test_stop_ends_a_completion_before_the_stop_string(port):
    greedy = text(port, prompt="the ", max_tokens=100, temperature=0)
    # a stop string that first occurs at k (past the first flush of 16 characters if it can)
    k, n = next((k, n) for n in (3, 2, 1) for k in [*range(20, 90), *range(1, 20)]
                if greedy.find(greedy[k : k + n]) == k)  # fmt: skip
    stop = greedy[k : k + n]
    status, js = post(port, prompt="the ", max_tokens=100, temperature=0, stop=[stop, "@@"])
    assert js["choices"][0]["text"] == greedy[:k]
    assert js["choices"][0]["finish_reason"] == "stop"
    streamed = events(port, prompt="the ", max_tokens=100, temperature=0, stop=stop)
    assert "".join(e["choices"][0]["text"] for e in streamed[:-1]) == greedy[:k]


@pytest.mark.parametrize(
    "body, status, code",
    [
        (b"{not json", 400, "invalid_json"),
        (json.dumps({"model": "nope", "prompt": "a"}).encode(), 404, "model_not_found"),
        (json.dumps({"prompt": "a", "max_tokens": -1}).encode(), 400, "invalid_value"),
        (json.dumps({"prompt": "a", "max_tokens": LONG + 1}).encode(), 400, "invalid_value"),
        (json.dumps({"prompt": "the \u4e2d"}).encode(), 400, "unknown_characters"),
        (json.dumps({"prompt": "a" * 5000}).encode(), 413, "request_too_large"),
        (json.dumps({"prompt": "a", "n": 13}).encode(), 503, "server_full"),
    ],
)
def test_a_bad_or_oversized_request_gets_an_openai_shaped_error(port, body, status, code):
    conn, r = _request(port, "POST", "/v1/completions", body)
    error = json.loads(r.read())["error"]
    assert r.status == status and error["code"] == code and error["message"]
    assert set(error) == {"message", "type", "param", "code"}


def test_an_unknown_route_is_an_openai_shaped_404(port):
    conn, r = _request(port, "GET", "/v2/nothing")
    assert r.status == 404 and json.loads(r.read())["error"]["code"] == "not_found"


def _active(port: int) -> int:
    conn, r = _request(port, "GET", "/health")
    return json.loads(r.read())["models"]["t"]["active"]


def _wait_active(port: int, until, timeout: float = 10.0) -> None:
    """Until the number of streams stepping meets `until` (`/health`); fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while not until(n := _active(port)):
        assert time.monotonic() < deadline, f"{n} streams active"
        time.sleep(0.02)


def _open_stream(port: int, **body) -> http.client.HTTPConnection:
    """A streamed completion whose first event has come (it steps); its open connection."""
    raw_body = json.dumps({**body, "stream": True}).encode()
    conn, r = _request(port, "POST", "/v1/completions", raw_body)
    assert r.status == 200
    r.readline()
    return conn


def test_a_client_that_goes_away_frees_its_stream(port):
    conn = _open_stream(port, prompt="the ", max_tokens=LONG)
    assert _active(port) == 1  # stepping: minutes of text to go
    conn.sock.close()
    conn.close()
    _wait_active(port, lambda n: n == 0, timeout=5.0)  # freed at once, not at its end
    assert text(port, prompt="a ", max_tokens=5) is not None  # and the server still serves


def test_sigterm_ends_the_streams_and_stops_the_server_at_once(home):
    proc, port = _start(home, "--run", "t", "--max-tokens", "100000")
    body = json.dumps({"prompt": "the ", "max_tokens": 100000, "stream": True}).encode()
    conn, r = _request(port, "POST", "/v1/completions", body)
    r.readline()
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - started < 5 and proc.returncode == 143
    assert "SIGTERM" in err and "Traceback" not in err
    rest = r.read().decode()  # the stream in flight was ended, not cut off
    assert rest.rstrip().endswith("data: [DONE]")


def test_serve_help_imports_neither_torch_nor_the_server(tmp_path):
    code = (
        "import sys\nfrom charrnn_cli.cli import main\nassert main(['serve', '--help']) == 0\n"
        "assert not {'torch', 'numpy', 'starlette', 'uvicorn'} & set(sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_a_missing_run_is_one_line_and_no_server(cli, home, charrnn_home):
    shutil.copytree(home / "runs" / "t", charrnn_home / "runs" / "t")
    r = cli("serve", "--run", "nope", "--port", "0")
    assert r.code != 0 and "nope" in r.err and "Traceback" not in r.err


def test_a_port_in_use_is_one_line(cli, home, charrnn_home):
    shutil.copytree(home / "runs" / "t", charrnn_home / "runs" / "t")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        r = cli("serve", "--run", "t", "--port", str(taken.getsockname()[1]))
    assert r.code == 1 and "cannot listen on 127.0.0.1:" in r.err and "Traceback" not in r.err


def test_an_exported_folder_is_served_under_its_path(cli, home, charrnn_home, tmp_path):
    from charrnn_cli.serve import server
    from charrnn_cli.serve.protocol import Limits

    shutil.copytree(home / "runs" / "t", charrnn_home / "runs" / "t")
    folder = tmp_path / "t-model"
    assert cli("export", "--run", "t", "--output", str(folder)).code == 0
    models = server.load_models(["t", str(folder)], "best", Limits())
    assert [m.name for m in models] == ["t", str(folder)]
    assert models[1].vocab == models[0].vocab
