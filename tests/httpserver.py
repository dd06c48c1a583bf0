"""A real HTTP server on 127.0.0.1 for download tests, with faults a test can switch on per path.

`FaultServer` serves bytes from a dict of path -> `Route`; each route can fail with 500 or 429 a
few times, answer 404, cut its body halfway, ignore or botch Range, stall, gzip its body or
trickle it out slowly. Every request's path and headers are recorded. Use it through the
`http_server` fixture (stopped at the test's end) and pair it with `fast_network`, which makes
the client's timeouts and backoff tiny; `dead_url` is a URL where nothing listens and
`tinyshakespeare` a text the suite makes, pinned in the registry in Tiny Shakespeare's place
for the test (so the fetch tests run on any clone, offline, with nothing beside it). Load the
fixtures in a test module with `pytest_plugins = ["httpserver"]` (no direct import, so pytest
can rewrite asserts).
"""

from __future__ import annotations

import gzip
import hashlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.helpers import made_play

MAX_STALL = 2.0  # seconds: a stalled answer never holds a thread longer than this


@dataclass
class Route:
    """What one path serves, and how it misbehaves."""

    body: bytes
    status: int = 200  # anything else: answer with this status (e.g. 404)
    fail_500: int = 0  # the first N requests get 500
    fail_429: int = 0  # the next N get 429 with Retry-After: 0
    cut_first: int = 0  # the first N bodies stop halfway (full Content-Length, then close)
    ignore_range: bool = False  # always 200 with the full body
    bad_content_range: bool = False  # 206 whose Content-Range starts at 0, full body
    stall: float = 0.0  # sleep this long before answering (capped at MAX_STALL)
    gzip: bool = False  # Content-Encoding: gzip whatever the client accepts
    chunk_delay: float = 0.0  # pause between 16 KiB chunks of the body
    hits: int = 0
    bodies: int = 0


@dataclass
class Request:
    path: str
    headers: dict[str, str]


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up early (a retry, a timeout) is expected here: without this,
    socketserver prints the reset to stderr, where the in-process CLI tests read it."""

    def handle_error(self, request: object, client_address: object) -> None:
        pass


@dataclass
class FaultServer:
    """A ThreadingHTTPServer on 127.0.0.1 (port 0) in a background thread."""

    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.httpd = _QuietServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:40123 (no trailing slash)."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def add(self, path: str, body: bytes, **faults: object) -> Route:
        """Serve `body` at `path` (with a leading '/') with the given faults; return the route."""
        route = Route(body, **faults)  # type: ignore[arg-type]
        self.routes[path] = route
        return route

    def requests_for(self, path: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        server: FaultServer = self.server.owner  # type: ignore[attr-defined]
        with server.lock:
            server.requests.append(Request(self.path, dict(self.headers.items())))
            route = server.routes.get(self.path)
            if route is not None:
                route.hits += 1
                hit = route.hits
        try:
            if route is None:
                return self._plain(404, b"not found\n")
            if route.stall:
                time.sleep(min(route.stall, MAX_STALL))
            if hit <= route.fail_500:
                return self._plain(500, b"boom\n")
            if hit <= route.fail_500 + route.fail_429:
                return self._plain(429, b"slow down\n", {"Retry-After": "0"})
            if route.status != 200:
                return self._plain(route.status, b"no\n")
            self._body(server, route)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _plain(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self, server: FaultServer, route: Route) -> None:
        payload, status, headers = route.body, 200, {"Accept-Ranges": "bytes"}
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", "").strip())
        if route.gzip:
            payload = gzip.compress(route.body)
            headers = {"Content-Encoding": "gzip"}
        elif match and not route.ignore_range:
            start = 0 if route.bad_content_range else int(match.group(1))
            payload, status = route.body[start:], 206
            end = len(route.body) - 1
            headers["Content-Range"] = f"bytes {start}-{end}/{len(route.body)}"
        with server.lock:
            route.bodies += 1
            cut = route.bodies <= route.cut_first
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if cut:
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        for i in range(0, len(payload), 16384):
            self.wfile.write(payload[i : i + 16384])
            if route.chunk_delay:
                self.wfile.flush()
                time.sleep(route.chunk_delay)


def closed_port() -> int:
    """A localhost port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dead_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: the connection is refused."""
    return f"http://127.0.0.1:{closed_port()}/corpus.txt"


@pytest.fixture(scope="session")
def made_shakespeare() -> bytes:
    """A play-shaped text of Tiny Shakespeare's size (1,115,394 bytes), made from a seed."""
    return made_play(1_115_394)


@pytest.fixture
def tinyshakespeare(made_shakespeare: bytes, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """The text to serve as `tinyshakespeare`: the suite's own, pinned (sha256 and size) in
    the registry for this test; a subprocess gets the same pin from `helpers.pinned_charrnn`."""
    from charrnn_cli import corpora

    entry = corpora.REGISTRY["tinyshakespeare"]
    pin = replace(
        entry, sha256=hashlib.sha256(made_shakespeare).hexdigest(), size=len(made_shakespeare)
    )
    monkeypatch.setitem(corpora.REGISTRY, "tinyshakespeare", pin)
    return made_shakespeare


@pytest.fixture
def http_server() -> Iterator[FaultServer]:
    """A fault-injecting server on 127.0.0.1, stopped at the end of the test."""
    server = FaultServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fast_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny timeouts, two retries and no backoff, so fault tests take milliseconds."""
    from charrnn_cli.corpora import download

    fast = download.DownloadOptions(
        connect_timeout=2.0,
        read_timeout=2.0,
        retries=2,
        backoff_factor=0.0,
        resumes=3,
        max_backoff=0.0,
        max_retry_after=0.0,
        lock_wait=5.0,
    )
    monkeypatch.setattr(download, "DEFAULTS", fast)
