"""Running `charrnn serve`: load each run, start its batcher, and serve the app with uvicorn on
a socket bound first (so a port in use is one clear error), until SIGINT or SIGTERM.

A signal ends every stream where it stands (each gets its text so far and its finish) and stops
the server; `serve` returns the signal's number, or None when it stopped otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from charrnn_cli.errors import CharrnnError, UsageError
from charrnn_cli.serve.access import Access, is_loopback
from charrnn_cli.serve.app import Served, build
from charrnn_cli.serve.batcher import Batcher
from charrnn_cli.serve.protocol import Limits

GRACE_SECONDS = 3  # how long connections may take to close once stopping
SWITCH_SECONDS = 0.0005  # the GIL hand-over interval: the loop answers while a batch steps


def load_models(runs: list[str], checkpoint: str, limits: Limits) -> list[Served]:
    """Each run (or the latest when none is named) loaded for sampling on the CPU, with its
    batcher (not yet started)."""
    from charrnn_cli import export
    from charrnn_cli.sampling.generator import load
    from charrnn_cli.storage import store

    models: list[Served] = []
    for run in runs or [None]:
        sm = load(run, checkpoint, "cpu", batched=True)
        if any(m.name == sm.name for m in models):
            raise UsageError(f"run {sm.name!r} is named twice")
        # an exported folder is served under the path it was given, dated by its folder
        where = Path(sm.name) if export.is_folder(sm.name) else store.run_dir(sm.name)
        created = int(where.stat().st_mtime)
        models.append(Served(sm.name, sm.vocab, Batcher(sm, limits), created, sm.kind))
    return models


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or one line saying why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CharrnnError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def guard(sock: socket.socket, access: Access, insecure: bool) -> Access:
    """The access rules for the bound socket: a loopback one checks Host names; any other
    needs an API key unless told `insecure` (one line and the socket closed otherwise)."""
    address = sock.getsockname()[0]
    loopback = is_loopback(address)
    if not loopback and access.api_key is None and not insecure:
        sock.close()
        raise UsageError(
            f"refusing to serve on {address}, beyond this machine, without an API key: "
            "give --api-key KEY (or CHARRNN_API_KEY), or --insecure to serve anyone who can "
            "reach it"
        )
    return Access(loopback, access.api_key, access.allowed_hosts, access.cors_origins)


class _Server(uvicorn.Server):
    """uvicorn's server that starts the batchers on its loop and, on a signal, ends the streams
    in flight at once (instead of waiting for them) and keeps the signal for the exit code."""

    def __init__(self, config: uvicorn.Config, batchers: list[Batcher]) -> None:
        super().__init__(config)
        self.batchers = batchers
        self.stopped_by: int | None = None
        self.ready: Callable[[], Any] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        for b in self.batchers:
            b.start(loop)
        await super().startup(sockets)
        if self.ready is not None and self.started:
            self.ready()

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True
        self.stopped_by = self.stopped_by or sig
        for b in self.batchers:
            b.stop()


def serve(
    models: list[Served],
    sock: socket.socket,
    limits: Limits,
    ready: Callable[[], Any] | None = None,
    access: Access | None = None,
) -> int | None:
    """Serve until a signal; return its number (None when the server stopped otherwise)."""
    config = uvicorn.Config(
        build(models, limits, access), log_level="warning", access_log=False, lifespan="off",
        timeout_graceful_shutdown=GRACE_SECONDS, server_header=False,
    )  # fmt: skip
    server = _Server(config, [m.batcher for m in models])
    server.ready = ready
    old = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_SECONDS)
    try:
        server.run(sockets=[sock])
    finally:
        sys.setswitchinterval(old)
        for m in models:
            m.batcher.stop()
        for m in models:
            m.batcher.join(1.0)
        with contextlib.suppress(OSError):
            sock.close()
    return server.stopped_by
