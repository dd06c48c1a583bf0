"""charrnn: character-level recurrent language models from the command line.

This module only knows the version; it imports nothing else, so `charrnn --help` stays fast.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("charrnn")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
