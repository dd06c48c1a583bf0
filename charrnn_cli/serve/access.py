"""Who may drive `charrnn serve`: the checks every request passes before any route. Torch-free.

A web page the user visits must not be able to use the server. A browser sends a cross-origin
"simple" request (a form's text/plain POST) without asking first, and with DNS rebinding a
page's own origin can point at 127.0.0.1, so:

- bound to a loopback address, only a loopback `Host` (localhost, 127.x.x.x, [::1], any port)
  or one named by `--allowed-host` is served (403): a rebound name is refused;
- a request from a page (an `Origin` header) is served only when that page is the server's own
  (the same host and port) or named by `--cors-origin`; only then are CORS headers sent and a
  preflight (OPTIONS) answered;
- a POST must say `Content-Type: application/json` (415), which no page can send cross-origin
  without a preflight;
- with an API key (`--api-key` or CHARRNN_API_KEY), every `/v1/` route needs
  `Authorization: Bearer KEY` (401), compared in constant time, as llama.cpp and vLLM check it.

A refusal reads and discards the request's body first (`drain`, bounded in bytes and time), so a
client still sending reads the answer instead of a connection reset.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

DRAIN_BYTES = 64 << 20  # the most of a refused body read (and discarded) before answering
DRAIN_SECONDS = 10.0  # ...and for how long
PREFLIGHT = {
    "access-control-allow-methods": "GET, POST, OPTIONS",
    "access-control-allow-headers": "Authorization, Content-Type",
    "access-control-max-age": "600",
}

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Access:
    """The server's access rules (see the module's text)."""

    loopback: bool = True  # bound to a loopback address: Host names are checked
    api_key: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()  # "*": any origin


def is_loopback(address: str) -> bool:
    """Whether an address (or the name "localhost") is this machine's loopback."""
    address = address.strip("[]").lower().rstrip(".")
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """A Host header's name, without its port: "[::1]:8000" -> "::1"."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


async def drain(chunks: AsyncIterator[bytes], declared: int | None = None) -> None:
    """Read and discard what is left of a body, up to DRAIN_BYTES and DRAIN_SECONDS (none when
    it says it is larger: its client would not read the answer before the limit anyway)."""
    if declared is not None and declared > DRAIN_BYTES:
        return
    size, deadline = 0, time.monotonic() + DRAIN_SECONDS
    while size <= DRAIN_BYTES:
        try:
            chunk = await asyncio.wait_for(chunks.__anext__(), deadline - time.monotonic())
        except Exception:  # its end, the deadline, a client gone (starlette's ClientDisconnect)
            return
        size += len(chunk)


class Guard:
    """ASGI middleware applying `Access` to every HTTP request."""

    def __init__(self, app: Callable[..., Awaitable[None]], access: Access) -> None:
        self.app, self.access = app, access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        origin = headers.get("origin")
        cors = self._cors(origin, headers)
        refusal = self._refusal(scope, headers, origin)
        if refusal is None and scope["method"] == "OPTIONS" and cors:
            await _answer(send, 204, None, {**cors, **PREFLIGHT})
            return
        if refusal is not None:
            status, message, code, extra = refusal
            declared = headers.get("content-length", "")
            await drain(_body(receive), int(declared) if declared.isdigit() else None)
            error = {"message": message, "type": "invalid_request_error", "param": None,
                     "code": code}  # fmt: skip
            await _answer(send, status, {"error": error}, {**cors, **extra})
            return
        if cors:
            send = _with_headers(send, cors)
        await self.app(scope, receive, send)

    def _cors(self, origin: str | None, headers: dict[str, str]) -> dict[str, str]:
        """The CORS headers for a page at `origin` that --cors-origin names (none otherwise)."""
        allowed = self.access.cors_origins
        if origin is None or not (origin in allowed or "*" in allowed):
            return {}
        return {"access-control-allow-origin": origin, "vary": "Origin"}

    def _refusal(
        self, scope: Scope, headers: dict[str, str], origin: str | None
    ) -> tuple[int, str, str, dict[str, str]] | None:
        a = self.access
        host = headers.get("host")
        if host is not None and (a.loopback or a.allowed_hosts):
            name = host_name(host)
            named = name in a.allowed_hosts or host.lower() in a.allowed_hosts
            if not named and not (a.loopback and is_loopback(name)):
                return (403, f"this server does not answer for the host {host[:100]!r} (a "
                        "loopback name, or one named by --allowed-host)", "host_not_allowed",
                        {})  # fmt: skip
        if origin is not None and not self._cors(origin, headers):
            if host is None or urlsplit(origin).netloc.lower() != host.lower():
                return (403, f"pages from {origin[:100]!r} may not use this server (see "
                        "--cors-origin)", "origin_not_allowed", {})  # fmt: skip
        if scope["method"] == "OPTIONS":
            return None
        if a.api_key is not None and scope["path"].startswith("/v1/"):
            given = headers.get("authorization", "")
            scheme, _, token = given.partition(" ")
            ok = scheme.lower() == "bearer" and hmac.compare_digest(
                token.strip().encode("utf-8", "replace"), a.api_key.encode("utf-8")
            )
            if not ok:
                return (401, "this server needs an API key: send Authorization: Bearer KEY",
                        "invalid_api_key", {"www-authenticate": "Bearer"})  # fmt: skip
        if scope["method"] == "POST":
            kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if kind != "application/json":
                shown = kind[:60] or "none"
                return (415, f"a POST must be Content-Type: application/json, not {shown}",
                        "unsupported_media_type", {})  # fmt: skip
        return None


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def _with_headers(send: Send, extra: dict[str, str]) -> Send:
    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            names = {k.lower() for k, _ in message.get("headers", [])}
            added = [(k.encode(), v.encode("latin-1")) for k, v in extra.items()
                     if k.encode() not in names]  # fmt: skip
            message = {**message, "headers": [*message.get("headers", []), *added]}
        await send(message)

    return wrapped


async def _answer(send: Send, status: int, body: Any, headers: dict[str, str]) -> None:
    raw = b"" if body is None else json.dumps(body).encode()
    pairs = [(k.encode(), v.encode("latin-1", "replace")) for k, v in headers.items()]
    if body is not None:
        pairs.append((b"content-type", b"application/json"))
    pairs.append((b"content-length", str(len(raw)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": pairs})
    await send({"type": "http.response.body", "body": raw})
