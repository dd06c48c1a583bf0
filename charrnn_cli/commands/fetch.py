"""`charrnn fetch`: download, build or import a corpus into the cache, or list the cache.

A thin adapter over `charrnn_cli.corpora`: parse, call one domain function, render. stdout gets
data only (the cached path, the `--list` table / tab-separated lines, or the paths `--gc` freed,
one a line); stderr gets progress
(a rich bar when interactive, a line or two otherwise) and a one-line summary, unless `--quiet`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from charrnn_cli import console
from charrnn_cli.commands.options import INT_MAX
from charrnn_cli.errors import UsageError

if TYPE_CHECKING:
    from charrnn_cli.corpora import CorpusFile


def fetch(
    source: Annotated[
        str | None,
        typer.Argument(
            metavar="[NAME|URL]",
            help="A corpus name (tinyshakespeare, the default; shakespeare; pysrc, built "
            "offline from Python's sources; or one cached earlier) or an http(s) URL of any text.",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Cache the corpus under this name.", show_default=False),
    ] = None,
    sha256: Annotated[
        str | None,
        typer.Option(
            "--sha256",
            metavar="HEX",
            help="Expected sha256 of a URL download (refused when it differs).",
            show_default=False,
        ),
    ] = None,
    from_path: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="PATH",
            help="Import a local text file, or '-' for stdin (then --name is required).",
            show_default=False,
        ),
    ] = None,
    list_: Annotated[
        bool,
        typer.Option(
            "--list",
            help="List the known and cached corpora and exit (a table; piped, tab-separated "
            "lines of name, status, size, sha256, source, with no heading).",
        ),
    ] = False,
    gc: Annotated[
        bool,
        typer.Option(
            "--gc",
            help="Free the stored texts that no name and no run refers to (a text stays while "
            "a run trained on it exists, even after its name was reused, and for 10 minutes "
            "after it was written, while a fetch or a trainer may be about to name it).",
        ),
    ] = False,
    print_path: Annotated[
        bool,
        typer.Option(
            "--print-path", help="Print only the cached file's path (fetching it if missing)."
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Download again even if already cached.")
    ] = False,
    mirror: Annotated[
        str | None,
        typer.Option(
            "--mirror",
            metavar="BASE_URL",
            help="Fetch a registry corpus NAME from BASE_URL/NAME.txt (its sha256 still applies; "
            "default: $CHARRNN_MIRROR).",
            show_default=False,
        ),
    ] = None,
    max_bytes: Annotated[
        int | None,
        typer.Option(
            "--max-bytes",
            min=1,
            max=INT_MAX,
            help="Size cap of the pysrc corpus (default: 4000000).",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            min=0.1,
            max=600.0,
            help="Seconds to wait for the connection and for each read "
            "(default: 10 to connect, 30 to read).",
            show_default=False,
        ),
    ] = None,
    retries: Annotated[
        int | None,
        typer.Option(
            "--retries",
            min=0,
            max=20,
            help="Retries on connection errors, timeouts, 429 and 5xx (default: 4).",
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress or summary on stderr.")
    ] = False,
) -> None:
    """Download, build or import a text corpus into the cache and print its path.

    Examples: `charrnn fetch`, `charrnn fetch pysrc`, `charrnn fetch URL --sha256 HEX`,
    `charrnn fetch --from notes.txt`, `cat x.txt | charrnn fetch --from - --name x`,
    `charrnn fetch --list`, `charrnn fetch --gc`. Set CHARRNN_OFFLINE=1 to forbid any download.
    """
    from charrnn_cli import corpora

    if list_ or gc:
        if source is not None or from_path is not None or (list_ and gc):
            flag = "--gc" if gc else "--list"
            raise UsageError(f"{flag} takes no NAME, URL, --from or other action")
        from charrnn_cli.commands import fetch_cache

        fetch_cache.collect(quiet) if gc else fetch_cache.render_list(quiet)
        return
    if from_path is not None:
        if source is not None:
            raise UsageError("give either NAME|URL or --from PATH, not both")
        if sha256 is not None or max_bytes is not None:
            raise UsageError("--sha256 and --max-bytes do not apply to --from")
        if from_path == "-" and not name:
            raise UsageError("--from - (stdin) needs --name NAME")
        corpus = corpora.import_file(from_path, name or corpora.sanitize_name(Path(from_path).stem))
        _finish(corpus, "imported", "", quiet)
        return
    source = source or corpora.DEFAULT
    knobs = dict(connect_timeout=timeout, read_timeout=timeout, retries=retries)
    corpus, progress = fetched(source, quiet, name, sha256, force, mirror, max_bytes, **knobs)
    if corpus.source == corpora.PYSRC:
        verb, note = "built", ""
    elif sha256 is not None or source in corpora.REGISTRY:
        verb, note = "fetched", " (verified)"
    elif corpora.is_url(source):
        verb, note = "fetched", " (not pinned: pass --sha256 to check it)"
    else:
        verb, note = "fetched", ""
    if progress.calls == 0:
        verb = "already cached"
    _finish(corpus, verb, note, quiet or (print_path and progress.calls == 0))


def fetched(
    source: str,
    quiet: bool,
    name: str | None = None,
    sha256: str | None = None,
    force: bool = False,
    mirror: str | None = None,
    max_bytes: int | None = None,
    **knobs: Any,
) -> tuple[CorpusFile, _DownloadProgress]:
    """`corpora.fetch` with its progress drawn on stderr (unless `quiet`); the corpus, and the
    progress callback, whose `calls` say whether anything was downloaded or built."""
    from charrnn_cli import corpora

    with _progress(quiet, _label(source, mirror)) as progress:
        corpus = corpora.fetch(
            source,
            name=name,
            sha256=sha256,
            force=force,
            mirror=mirror,
            max_bytes=max_bytes,
            progress=progress,
            **knobs,
        )
    return corpus, progress


def _finish(corpus: CorpusFile, verb: str, note: str, quiet: bool) -> None:
    """The path on stdout (data); the one-line summary on stderr."""
    console.out(str(corpus.path))
    if not quiet:
        console.err().print(
            f"{corpus.name}: {verb}, {corpus.size:,} bytes, sha256 {corpus.sha256}{note}",
            markup=False,
            soft_wrap=True,
        )


def _label(source: str, mirror: str | None) -> str:
    """What the plain progress line says is happening."""
    from charrnn_cli import corpora

    if source == corpora.PYSRC:
        return f"building pysrc from {corpora.stdlib_dir()}"
    if source in corpora.REGISTRY:
        return f"fetching {source} from {corpora.source_url(source, corpora.mirror(mirror))}"
    return f"fetching {source}"


class _DownloadProgress:
    """The progress callback: counts calls, draws a bar or prints a plain line or two."""

    def __init__(self, quiet: bool, label: str) -> None:
        self.quiet, self.label, self.calls = quiet, label, 0
        self.bar = None
        self.task = None

    def __call__(self, done: int, total: int | None) -> None:
        self.calls += 1
        if self.quiet:
            return
        if self.calls == 1:
            if console.is_interactive():
                self._start_bar(total)
            else:
                console.err().print(self.label, markup=False, soft_wrap=True)
        if self.bar is not None:
            self.bar.update(self.task, completed=done, total=total)

    def _start_bar(self, total: int | None) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console.err(),
            transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task(self.label.split(" from ")[0], total=total)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


@contextmanager
def _progress(quiet: bool, label: str) -> Iterator[_DownloadProgress]:
    counter = _DownloadProgress(quiet, label)
    try:
        yield counter
    finally:
        counter.stop()
