"""`charrnn train` (not yet)."""

from __future__ import annotations

from charrnn_cli.errors import CharrnnError


def train() -> None:
    """Not yet implemented."""
    raise CharrnnError("not yet implemented")
