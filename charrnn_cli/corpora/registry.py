"""The corpora charrnn knows by name, and the names, URLs and mirrors a corpus is given by.

The registry lists each known corpus with its URL and pinned sha256 and size (`pysrc` has no
URL: it is built locally). Around it: `CorpusFile`, what every way of getting a corpus returns;
the name rule for cached corpora (the package's one rule, `paths.check_name`); names made from
URLs; URL and sha256 checks; where a registry corpus is downloaded from (its URL, or a mirror
from `--mirror` or `CHARRNN_MIRROR`); and `CHARRNN_OFFLINE`.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from charrnn_cli.errors import UsageError
from charrnn_cli.storage import paths

DEFAULT = "tinyshakespeare"
PYSRC = "pysrc"
SHA_RE = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class Entry:
    """One corpus in the registry (`url` None: built locally)."""

    name: str
    url: str | None
    sha256: str | None
    size: int | None
    description: str


REGISTRY: dict[str, Entry] = {
    e.name: e
    for e in (
        Entry(
            "tinyshakespeare",
            "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
            "tinyshakespeare/input.txt",
            "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
            1_115_394,
            "Tiny Shakespeare (karpathy/char-rnn), about 1 MB",
        ),
        Entry(
            "shakespeare",
            "https://cs.stanford.edu/people/karpathy/char-rnn/shakespeare_input.txt",
            "59a0ad62833b2e15ec811c548618876359e902717431236e52699a0e2bc253ca",
            None,
            "The complete works of Shakespeare, about 4.4 MB",
        ),
        Entry(PYSRC, None, None, None, "This Python's standard-library sources (offline)"),
    )
}


@dataclass(frozen=True)
class CorpusFile:
    name: str  # cache name, or the file's stem for a plain path
    path: Path  # the text file to read
    sha256: str
    size: int
    source: str  # url, "pysrc", "file:<abs path>", or "stdin"


# the one name rule, labelled for corpora: a cache name becomes `<name>.txt` and `<name>.json`
check_name = functools.partial(paths.check_name, kind="corpus")


def looks_like_name(text: str) -> bool:
    """Whether `text` is written like a name (as opposed to a path or a URL), valid or not."""
    return bool(paths.NAME_SHAPE.fullmatch(text))


def name_from_url(url: str) -> str:
    """A cache name from a URL's file stem (`.../input.txt` -> `input`), sanitized."""
    from urllib.parse import unquote, urlparse

    parsed = urlparse(url)
    return sanitize_name(PurePosixPath(unquote(parsed.path)).stem or (parsed.hostname or ""))


def sanitize_name(text: str) -> str:
    """`text` made into a valid cache name (other characters become '-'); "corpus" if empty."""
    return paths.make_name(text)


def is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def check_url(url: str) -> str:
    """Return `url` if it can be requested at all, else raise UsageError (a malformed URL is
    the user's typo, not a network failure)."""
    from urllib.parse import urlsplit

    why = None
    if any(c.isspace() or ord(c) < 32 for c in url):
        why = "it contains spaces or control characters (encode a space as %20)"
    else:
        try:
            parts = urlsplit(url)
            _ = parts.port  # raises ValueError for a port that is not a number in 0-65535
            if not parts.hostname:
                why = "it names no host"
            else:
                why = _host_problem(parts.hostname)
        except ValueError as exc:
            why = str(exc)
    if why is not None:
        raise UsageError(f"malformed URL {url!r}: {why}")
    return url


def _host_problem(host: str) -> str | None:
    """What makes a host name unusable (DNS: labels of 1 to 63 characters, 253 in all), or
    None; an IPv6 literal is left to the URL parser."""
    if ":" in host:
        return None
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or any(not 0 < len(label) <= 63 for label in labels):
        return "its host name has an empty part or a part longer than 63 characters"
    return None


def check_sha(sha256: str | None) -> str | None:
    """A `--sha256` value in lower case, or None; a UsageError unless it is 64 hex digits."""
    if sha256 is None:
        return None
    value = sha256.strip().lower()
    if not SHA_RE.fullmatch(value):
        raise UsageError(f"--sha256 must be 64 hex digits, not {sha256!r}")
    return value


def mirror(given: str | None = None) -> str | None:
    """The mirror to fetch registry corpora from: `given` (`--mirror`), else `CHARRNN_MIRROR`
    (the one place it is read), else None."""
    if given is None:
        given = os.environ.get("CHARRNN_MIRROR", "").strip() or None
    return given


def source_url(entry: Entry | str, mirror: str | None = None) -> str:
    """Where a registry corpus is downloaded from: `mirror/NAME.txt`, else its own URL."""
    if isinstance(entry, str):
        entry = REGISTRY[entry]
    if mirror:
        if not is_url(mirror):
            raise UsageError(f"--mirror must be an http(s) URL, not {mirror!r}")
        return check_url(f"{mirror.rstrip('/')}/{entry.name}.txt")
    if entry.url is None:
        raise UsageError(f"{entry.name} is built locally and has no URL")
    return entry.url


def is_offline() -> bool:
    """True when `CHARRNN_OFFLINE` is set to something other than 0/false/no."""
    return os.environ.get("CHARRNN_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")
