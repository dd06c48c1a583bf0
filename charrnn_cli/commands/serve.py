"""`charrnn serve`: an OpenAI-compatible completions server for one or more trained runs.

Parses the options into `Limits`, loads the runs, binds the address and serves
(`charrnn_cli.serve.server`) until SIGINT or SIGTERM, which end the streams in flight and exit
130 or 143. Starlette, uvicorn and torch are imported only here, inside the command (they are
the optional `serve` extra), so `charrnn --help` stays light.
"""

from __future__ import annotations

from typing import Annotated

import typer

from charrnn_cli import console
from charrnn_cli.commands.options import CheckpointOption, escaped
from charrnn_cli.errors import UsageError, signal_exit_code, signal_name
from charrnn_cli.storage import store


def serve(
    run: Annotated[
        list[str] | None,
        typer.Option(
            help=escaped(
                "A run to serve, by its name or an exported folder's path (repeat for more; "
                "the first is the default model) [latest]."
            ),
            metavar="RUN",
            autocompletion=store.complete_run_name,
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback unless told).")] = (
        "127.0.0.1"
    ),
    port: Annotated[
        int, typer.Option(help="Port to listen on (0: any free one).", min=0, max=65535)
    ] = 8000,  # fmt: skip
    checkpoint: CheckpointOption = "best",
    max_streams: Annotated[
        int, typer.Option(help="Streams stepped at once (one per choice).", min=1, max=4096)
    ] = 256,
    max_queue: Annotated[
        int, typer.Option(help="Streams waiting beyond those; more get a 503.", min=0, max=1 << 20)
    ] = 1024,
    max_tokens: Annotated[
        int, typer.Option(help="The most characters a completion may ask for.", min=1, max=1 << 30)
    ] = 100_000,
    max_body: Annotated[
        int,
        typer.Option(
            help="The largest request body in bytes; larger get a 413.", min=1024, max=1 << 30
        ),
    ] = 1 << 20,
    max_unread: Annotated[
        int,
        typer.Option(
            help="Characters a response may hold unread before its client counts as too slow "
            "and is dropped.",
            min=1,
            max=1 << 30,
        ),
    ] = 1 << 20,
    api_key: Annotated[
        str | None,
        typer.Option(
            help="Serve /v1/ only to requests with Authorization: Bearer KEY.",
            metavar="KEY",
            envvar="CHARRNN_API_KEY",
            show_default=False,
        ),
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            help="A Host name to answer for beside loopback ones, while on loopback (repeat "
            "for more; e.g. behind a proxy).",
            metavar="NAME",
        ),
    ] = None,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(
            help="A web page's origin (e.g. http://localhost:3000, or *) allowed to call the "
            "server from a browser (repeat for more) [none].",
            metavar="ORIGIN",
        ),
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Serve a non-loopback address without an API key.",
        ),
    ] = False,
) -> None:
    """Serve runs over HTTP: OpenAI's /v1/completions (streaming too), /v1/models, a page at /."""
    if api_key is not None and not api_key.strip():
        raise UsageError("--api-key (or CHARRNN_API_KEY) is empty")
    try:
        from charrnn_cli.serve import server
        from charrnn_cli.serve.access import Access
        from charrnn_cli.serve.protocol import Limits
    except ImportError as exc:
        raise UsageError(
            f"charrnn serve needs the serve extra ({exc.name} is missing): "
            "pip install 'charrnn[serve]'"
        ) from None
    limits = Limits(max_streams=max_streams, max_queue=max_queue, max_tokens=max_tokens,
                    max_body=max_body, buffer=max_unread)  # fmt: skip
    sock = server.bind(host, port)  # first: a port in use is said before any loading
    hosts = tuple(h.strip().strip("[]").lower() for h in allowed_host or [])
    origins = tuple(o.strip().rstrip("/") for o in cors_origin or [])
    access = server.guard(sock, Access(True, api_key, hosts, origins), insecure)
    try:
        models = server.load_models(run or [], checkpoint, limits)
    except BaseException:
        sock.close()
        raise
    where = sock.getsockname()
    shown = f"[{where[0]}]" if ":" in where[0] else where[0]
    names = ", ".join(m.name for m in models)

    def ready() -> None:
        from rich.markup import escape

        url = escape(f"http://{shown}:{where[1]}/")
        console.log(f"serving {escape(names)} at {url} (OpenAI API under /v1; Ctrl-C stops)")

    stopped_by = server.serve(models, sock, limits, ready, access)
    if stopped_by is not None:
        console.log(f"{signal_name(stopped_by)}: stopped serving")
        raise typer.Exit(signal_exit_code(stopped_by))
