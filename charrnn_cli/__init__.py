"""charrnn: character-level recurrent language models from the command line and from Python.

This module knows the version and names the Python API (api.py), imported when first used: so
`import charrnn_cli` and `charrnn --help` stay fast and never import torch; `load` does.

    import charrnn_cli as charrnn
    m = charrnn.load("latest")
"""

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("charrnn")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

if TYPE_CHECKING:
    from charrnn_cli.api import Model, load

__all__ = ["Model", "__version__", "load"]


def __getattr__(name: str) -> Any:
    """The API's names (api.py), imported when first used."""
    if name in ("Model", "load"):
        from charrnn_cli import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
