"""Download one text file over HTTP into place: retries, Range resumes, checks, atomic move.

The job: `download(url, final, ...)` streams `url` into a temp file beside `final` (through
`paths.atomic_file`) while hashing it and checking that it is UTF-8 text (`text.TextSink`), then
verifies size and sha256 before the file is moved into place. Whatever fails, `final` is
untouched and the temp is removed. Connection errors, 429 (honouring Retry-After) and 5xx
answers are retried with backoff by urllib3's `Retry`; a body cut off mid-stream is resumed here
with a `Range` request from the bytes already in the temp file (or restarted, truncating it,
when the server ignores Range or encodes the body).

Nothing here prints: progress goes to an optional `progress(done, total)` callback, and failures
are `NetworkError` (exit 3) or `CorruptFileError` (exit 4) with a one-line message.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charrnn_cli import __version__
from charrnn_cli.errors import CorruptFileError, NetworkError, UsageError
from charrnn_cli.storage import paths
from charrnn_cli.text import TextSink

if TYPE_CHECKING:
    import requests

Progress = Callable[[int, "int | None"], None]  # (bytes done, bytes in all when known)

CHUNK = 64 * 1024
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class DownloadOptions:
    """The network knobs: timeouts in seconds, retry counts and the backoff factor."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    retries: int = 4  # per request, by urllib3: connection errors, read timeouts, 429, 5xx
    backoff_factor: float = 0.5  # sleeps 0, 2f, 4f, ... between tries (capped at max_backoff)
    resumes: int = 5  # bodies cut off mid-stream that are resumed (or restarted)
    max_backoff: float = 30.0
    max_retry_after: float = 60.0
    lock_wait: float = 60.0  # how long to wait for another process fetching the same corpus


DEFAULTS = DownloadOptions()


def options(**knobs: float | int | None) -> DownloadOptions:
    """`DEFAULTS` with the given knobs replaced (None keeps the default)."""
    from dataclasses import fields, replace

    known = {f.name for f in fields(DownloadOptions)}
    unknown = sorted(set(knobs) - known)
    if unknown:
        raise TypeError(f"unknown network option(s): {', '.join(unknown)}")
    return replace(DEFAULTS, **{k: v for k, v in knobs.items() if v is not None})


def make_session(opts: DownloadOptions) -> requests.Session:
    """A Session that retries connection errors, read timeouts, 429 and 5xx with backoff."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    kwargs = dict(
        total=opts.retries,
        backoff_factor=opts.backoff_factor,
        backoff_max=opts.max_backoff,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    try:
        retry = Retry(**kwargs, retry_after_max=int(opts.max_retry_after))
    except TypeError:  # urllib3 < 2.6 has no cap on Retry-After
        retry = Retry(**kwargs)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update({"User-Agent": f"charrnn/{__version__}", "Accept-Encoding": "identity"})
    return session


def network_error(url: str, reason: str) -> NetworkError:
    """The one-line error for a download that cannot be done (the caller, who knows what was
    being fetched, adds the way out: `corpora.fetching.way_out`)."""
    return NetworkError(f"cannot download {url}: {reason}")


def describe(exc: BaseException) -> str:
    """A short reason for a requests/urllib3 failure ("connection refused", "timed out", ...)."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 20:
        e = todo.pop()
        seen.append(e)
        todo.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))
        for attr in ("reason", "__cause__", "__context__"):
            inner = getattr(e, attr, None)
            if isinstance(inner, BaseException) and inner not in seen:
                todo.append(inner)
    names = {type(e).__name__ for e in seen}
    if names & {"NameResolutionError", "gaierror"}:
        return "host name not found (no network or DNS?)"
    if "ConnectionRefusedError" in names:
        return "connection refused"
    if names & {"ConnectTimeoutError", "ConnectTimeout"}:
        return "connection timed out"
    if names & {"ReadTimeoutError", "ReadTimeout", "TimeoutError"}:
        return "the server stopped answering (read timed out)"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
RESTART = object()  # from _start_body: the answer cannot continue what is on disk


def download(
    url: str,
    final: Path,
    *,
    expected_sha256: str | None = None,
    expected_size: int | None = None,
    progress: Progress | None = None,
    opts: DownloadOptions | None = None,
    rename: Callable[[str], Path] | None = None,
) -> tuple[str, int]:
    """Fetch `url` into `final` atomically and return its (sha256, size). With `rename`, the
    verified file is moved to `rename(sha256)` (in the same folder) instead: a text stored by
    its content, whose name is known only at the end.

    Raises NetworkError when the server cannot be reached or answers with an error after the
    retries, CorruptFileError for an empty, binary or non-UTF-8 body, a wrong size or a wrong
    sha256 (naming both hashes). On any failure `final` keeps what it held before.
    """
    opts = opts or DEFAULTS
    with paths.atomic_file(final, "w+b") as pending, make_session(opts) as session:
        sink = TextSink(pending.fh, url, final)
        _stream(session, url, sink, progress, opts)
        sha, size = sink.finish()
        if expected_size is not None and size != expected_size:
            raise CorruptFileError(
                f"{url} has {size:,} bytes, expected {expected_size:,}: "
                "a truncated or different file; nothing was cached"
            )
        if expected_sha256 is not None and sha != expected_sha256.lower():
            raise CorruptFileError(
                f"sha256 mismatch for {url}: expected {expected_sha256.lower()}, "
                f"got {sha}; nothing was cached"
            )
        if rename is not None:
            pending.final = rename(sha)
    return sha, size


def _stream(
    session: requests.Session,
    url: str,
    sink: TextSink,
    progress: Progress | None,
    opts: DownloadOptions,
) -> None:
    """The resume loop: request, stream into `sink`, and on a cut-off body go again."""
    import requests

    cuts = 0
    can_resume = True
    while True:
        offset = sink.size if can_resume else 0
        if offset == 0 and sink.size:
            sink.reset()
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            resp = session.get(
                url,
                headers=headers,
                stream=True,
                timeout=(opts.connect_timeout, opts.read_timeout),
            )
        except (requests.exceptions.InvalidURL, ValueError) as exc:  # urllib3's parse errors
            # a URL no server could be asked for is the user's typo, not the network's fault
            raise UsageError(f"malformed URL {url!r}: {str(exc)[:160]}") from None
        except requests.exceptions.RequestException as exc:
            raise network_error(url, describe(exc)) from None
        with resp:
            total = _start_body(resp, url, sink, offset, opts)
            if total is RESTART:  # the server sent the wrong part: start over without Range
                can_resume = False
                cuts += 1
                if cuts > opts.resumes:
                    raise network_error(url, "the server answered Range requests wrongly")
                continue
            encoded = resp.headers.get("Content-Encoding", "identity").lower() not in (
                "",
                "identity",
            )
            expected_end = None if encoded or total is None else total
            if progress is not None:
                progress(sink.size, None if encoded else total)
            try:
                for chunk in resp.iter_content(CHUNK):
                    if chunk:
                        sink.write(chunk)
                        if progress is not None:
                            progress(sink.size, None if encoded else total)
                complete = expected_end is None or sink.size >= expected_end
                reason = f"the body ended after {sink.size:,} of {expected_end or 0:,} bytes"
            except (requests.exceptions.RequestException, OSError) as exc:
                complete = False
                reason = describe(exc)
        if complete:
            return
        cuts += 1
        if cuts > opts.resumes:
            raise network_error(url, f"the download kept breaking off ({reason})")
        can_resume = not encoded
        _backoff(opts, cuts)


def _start_body(
    resp: requests.Response, url: str, sink: TextSink, offset: int, opts: DownloadOptions
) -> Any:
    """Check the status of one answer; return the expected full size, None if unknown, or
    RESTART when a 206 does not start at `offset` (the caller restarts without Range)."""
    status = resp.status_code
    length = resp.headers.get("Content-Length")
    length = int(length) if length and length.isdigit() else None
    if status == 206:
        match = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
        if match is None or int(match.group(1)) != offset:
            return RESTART
        full = match.group(3)
        return int(full) if full != "*" else (offset + length if length is not None else None)
    if status == 200:
        if sink.size:  # the server ignored Range: truncate and rewrite, never append twice
            sink.reset()
        return length
    if status == 416 and offset:
        return RESTART
    reason = f"HTTP {status} {resp.reason or ''}".strip()
    if status in RETRY_STATUSES:
        reason += f" after {opts.retries} retries"
    raise network_error(url, reason)


def _backoff(opts: DownloadOptions, attempt: int) -> None:
    if attempt > 1 and opts.backoff_factor > 0:
        time.sleep(min(opts.max_backoff, opts.backoff_factor * 2 ** (attempt - 1)))
