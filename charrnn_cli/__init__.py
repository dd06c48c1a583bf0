"""charrnn: character-level recurrent language models from the command line and from Python.

This module knows the version and names the Python API (api.py), imported when first used: so
`import charrnn_cli` and `charrnn --help` stay fast and never import torch; `load` and `train`
do.

    import charrnn_cli as charrnn
    m = charrnn.train("pysrc", "py", max_minutes=1)   # or charrnn.load("latest")
    m.generate("def ", length=200)
"""

import sys
from importlib.metadata import PackageNotFoundError, version
from types import ModuleType
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("charrnn")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

if TYPE_CHECKING:
    from charrnn_cli.api import CharrnnError, Model, fetch, load, runs, train

__all__ = ["CharrnnError", "Model", "__version__", "fetch", "load", "runs", "train"]


API = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> Any:
    """The API's names (api.py), imported when first used."""
    if name in API:
        from charrnn_cli import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Package(ModuleType):
    """This package, whose API names stay the API's. Importing a submodule sets it as an
    attribute of its package, so a top-level submodule named like an API name would hide it
    (`charrnn.train`, `charrnn.runs`). None is so named today (the loop is training/train.py,
    the files charrnn keeps are storage/); this keeps it so should one be added."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in API and isinstance(value, ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
