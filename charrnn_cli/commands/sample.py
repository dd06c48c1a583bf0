"""`charrnn sample` (not yet)."""

from __future__ import annotations

from charrnn_cli.errors import CharrnnError


def sample() -> None:
    """Not yet implemented."""
    raise CharrnnError("not yet implemented")
