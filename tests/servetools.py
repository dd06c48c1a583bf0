"""A `charrnn serve` process for tests, and plain HTTP requests to it with any headers (the test
modules of the server's access rules, limits and request classes share these)."""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.helpers import spawn, train_tiny


def tiny_home(folder: Path) -> Path:
    """A CHARRNN_HOME with one tiny trained run, `t`."""
    train_tiny(folder, "t")
    return folder / "home"


@contextmanager
def server(home: Path, *options: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    """`charrnn serve --run t OPTIONS` on a free loopback port, stopped (SIGTERM) at the end."""
    # glibc hands large blocks back when freed (its threshold would otherwise rise to the
    # largest freed), so a request's peak is measured from what the server really holds
    malloc = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}
    proc = spawn("serve", "--run", "t", "--port", "0", *options,
                 env={"CHARRNN_HOME": str(home), **malloc, **(env or {})})  # fmt: skip
    line = proc.stderr.readline()  # "serving t at http://ADDRESS:PORT/ ..."
    found = re.search(r":(\d+)/", line)
    if not found:
        proc.kill()
        raise AssertionError(line + proc.communicate(timeout=30)[1])
    try:
        yield Server(proc, int(found.group(1)))
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert "Traceback" not in err and "internal error" not in err, err


class Server:
    def __init__(self, proc: subprocess.Popen, port: int) -> None:
        self.proc, self.port = proc, port

    def request(
        self, method: str, path: str, body: bytes | None = None, **headers: str
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, headers lower-cased, body); `headers` replace the defaults (Host is
        127.0.0.1:PORT, Content-Type application/json); a header given as "" is left out."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        sent = {"Host": f"127.0.0.1:{self.port}", "Content-Type": "application/json"}
        sent.update({k.replace("_", "-"): v for k, v in headers.items()})
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for k, v in sent.items():
                if v:
                    conn.putheader(k, v)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def post(self, body: dict[str, Any], **headers: str) -> tuple[int, Any]:
        status, _, raw = self.request("POST", "/v1/completions", json.dumps(body).encode(),
                                      **headers)  # fmt: skip
        if body.get("stream") and status == 200:
            return status, events(raw)
        return status, json.loads(raw)

    def vm(self, key: str) -> int:
        """The server's VmHWM or VmRSS, in bytes."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        raise AssertionError(key)

    def reset_peak(self) -> int:
        """Make the server's peak memory its present size (Linux's clear_refs); that size."""
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")
        return self.vm("VmRSS")


def events(raw: bytes) -> list:
    """A streamed answer's events in order ("[DONE]" last)."""
    datas = [b[6:] for b in raw.decode().split("\n\n") if b.startswith("data: ")]
    return [d if d == "[DONE]" else json.loads(d) for d in datas]


def joined(evs: list) -> dict[int, dict[str, Any]]:
    """A stream's choices put together: text, logprobs' tokens, the finish reason."""
    out: dict[int, dict[str, Any]] = {}
    for e in evs:
        if e == "[DONE]" or "error" in e:
            continue
        for c in e["choices"]:
            got = out.setdefault(c["index"], {"text": "", "tokens": [], "finish_reason": None})
            got["text"] += c["text"]
            got["tokens"] += (c["logprobs"] or {}).get("tokens", [])
            got["finish_reason"] = c["finish_reason"] or got["finish_reason"]
    return out


def is_openai_error(raw: bytes | dict) -> bool:
    body = json.loads(raw) if isinstance(raw, bytes) else raw
    error = body.get("error") if isinstance(body, dict) else None
    return (
        isinstance(error, dict)
        and set(error) == {"message", "type", "param", "code"}
        and bool(error["message"])
    )


def send_raw(port: int, head: bytes, body_size: int, chunked: bool = False) -> bytes:
    """Send a request's head, then `body_size` bytes of body (in chunks of 64 KiB, framed
    when `chunked`), and return what the server answered: what a client that writes its whole
    body before reading sees (b"" when the connection was reset)."""
    chunk = 1 << 16
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(head)
        sent, block = 0, b"a" * chunk
        try:
            while sent < body_size:
                n = min(chunk, body_size - sent)
                s.sendall(f"{n:x}\r\n".encode() + block[:n] + b"\r\n" if chunked else block[:n])
                sent += n
            if chunked:
                s.sendall(b"0\r\n\r\n")
            got = b""
            while not _complete(got) and (part := s.recv(1 << 16)):
                got += part
            return got
        except (ConnectionResetError, BrokenPipeError):
            return b""


def _complete(answer: bytes) -> bool:
    """Whether an answer with a Content-Length has all of its body."""
    head, sep, body = answer.partition(b"\r\n\r\n")
    found = re.search(rb"(?i)content-length: *(\d+)", head)
    return bool(sep) and found is not None and len(body) >= int(found.group(1))
