"""The corpora: what the user names (`tinyshakespeare`, `pysrc`, a URL, a path, `-`) made into
a `CorpusFile` on disk with a known sha256.

One job a module:
    registry   the known corpora, `CorpusFile`, names, URLs, mirrors, `CHARRNN_OFFLINE`
    cache      texts by sha256 (`blobs/`), names pointing at them (`<name>.json`), validity,
               the lock, `store`, the migration of an older cache
    fetching   `fetch`: registry names, cached names and URLs into the cache
    pysrc      the offline corpus built from this Python's standard library
    importing  a local file, stdin or text in memory: imported into the cache or used in place
    resolving  `resolve` (what `--corpus` means) and `stored` (a run's corpus found again)
    listing    `list_corpora`, for `charrnn fetch --list`

Nothing here prints: callers pass an optional `progress(done, total)` callback. This module
re-exports the names the commands, the session and the tests use.
"""

from __future__ import annotations

from charrnn_cli.corpora.cache import blob_path, meta_path, read_meta, sha256_file
from charrnn_cli.corpora.download import Progress
from charrnn_cli.corpora.fetching import fetch
from charrnn_cli.corpora.importing import import_file, import_stdin, import_text
from charrnn_cli.corpora.listing import list_corpora
from charrnn_cli.corpora.pysrc import PYSRC_MAX_BYTES, build_pysrc, pysrc_chunks, stdlib_dir
from charrnn_cli.corpora.registry import (
    DEFAULT,
    PYSRC,
    REGISTRY,
    CorpusFile,
    Entry,
    check_name,
    check_url,
    is_offline,
    is_url,
    mirror,
    name_from_url,
    sanitize_name,
    source_url,
)
from charrnn_cli.corpora.resolving import resolve, stored

__all__ = [
    "DEFAULT",
    "PYSRC",
    "PYSRC_MAX_BYTES",
    "REGISTRY",
    "CorpusFile",
    "Entry",
    "Progress",
    "blob_path",
    "build_pysrc",
    "check_name",
    "check_url",
    "fetch",
    "import_file",
    "import_stdin",
    "import_text",
    "is_offline",
    "is_url",
    "list_corpora",
    "meta_path",
    "mirror",
    "name_from_url",
    "pysrc_chunks",
    "read_meta",
    "resolve",
    "sanitize_name",
    "sha256_file",
    "source_url",
    "stdlib_dir",
    "stored",
]
