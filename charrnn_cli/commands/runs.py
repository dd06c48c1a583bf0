"""`charrnn runs` (not yet)."""

from __future__ import annotations

import typer

app = typer.Typer(help="List and manage the checkpoint store.", invoke_without_command=True)


@app.callback()
def runs() -> None:
    """List the runs in the store."""
