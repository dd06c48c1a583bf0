"""`charrnn fetch --list` and `charrnn fetch --gc`: the cache's names and stored texts, rendered.

stdout gets data only: the table (on a terminal) or tab-separated lines, and the paths `--gc`
freed, one a line; warnings about damaged metadata and what `--gc` kept go to stderr.
"""

from __future__ import annotations

import sys

from charrnn_cli import console


def collect(quiet: bool) -> None:
    """`--gc`: the freed texts' paths on stdout, what was kept on stderr."""
    from charrnn_cli.corpora import collecting

    done = collecting.collect()
    for path in done.freed:
        console.out(str(path))
    if not quiet:
        console.log(
            f"freed {len(done.freed)} texts ({done.freed_bytes:,} bytes); kept {done.named} "
            f"named, {done.for_runs} only for runs trained on them"
            + (f", {done.recent} written in the last minutes" if done.recent else "")
        )


def render_list(quiet: bool = False) -> None:
    """A table on stdout when it is a terminal; tab-separated lines when piped. A name whose
    metadata is damaged is listed as such, with a warning naming the file."""
    from charrnn_cli import corpora

    rows = corpora.list_corpora()

    def cell(value: object) -> str:
        return "-" if value is None or value == "" else str(value)

    for r in rows:
        if r.get("problem") and not quiet:
            console.warn(r["problem"])

    if not sys.stdout.isatty():
        for r in rows:
            fields = (r["name"], r["status"], r["size"], r["sha256"], r["source"])
            console.out("\t".join(cell(v) for v in fields))
        _unnamed(quiet)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("name", "status", "size", "sha256"):
        table.add_column(column, justify="right" if column == "size" else "left", no_wrap=True)
    table.add_column("source", overflow="fold")
    for r in rows:
        size = f"{r['size']:,}" if isinstance(r["size"], int) else "-"
        sha = cell(r["sha256"])[:12]
        table.add_row(r["name"], r["status"], size, sha, cell(r["source"]))
    Console(highlight=False).print(table)
    _unnamed(quiet)


def _unnamed(quiet: bool) -> None:
    """After the names: the stored texts no name points at, which `--gc` may free."""
    from charrnn_cli.corpora.collecting import GRACE_S, collect

    spare = collect(dry_run=True)  # with --gc's grace period, so it frees what this says
    if quiet or not (spare.for_runs or spare.freed or spare.recent):
        return
    recent = (
        f", and {spare.recent} written in the last {GRACE_S / 60:g} minutes, which it keeps "
        "until then"
        if spare.recent
        else ""
    )
    console.log(
        f"also stored: {spare.for_runs} texts no name points at, kept for the runs trained on "
        f"them; {len(spare.freed)} nothing refers to (`charrnn fetch --gc` frees them){recent}"
    )
