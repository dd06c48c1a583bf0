"""`charrnn eval` (not yet)."""

from __future__ import annotations

from charrnn_cli.errors import CharrnnError


def evaluate() -> None:
    """Not yet implemented."""
    raise CharrnnError("not yet implemented")
