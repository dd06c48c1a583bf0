"""`fetch`: make sure a corpus named by the user is in the cache, downloading it if need be.

The source is a registry name (downloaded from its URL or a mirror and checked against its
pinned sha256), `pysrc` (built locally), a name cached earlier (fetched again from its URL, or,
when it was imported from a file, only checked), or an http(s) URL (cached under a name made
from it). A valid cached copy is reused unless `force`; `CHARRNN_OFFLINE=1` forbids requests.
"""

from __future__ import annotations

from typing import Any

from charrnn_cli.corpora import cache, download, registry
from charrnn_cli.corpora.download import Progress
from charrnn_cli.corpora.pysrc import build_pysrc
from charrnn_cli.corpora.registry import REGISTRY, CorpusFile, check_name
from charrnn_cli.errors import CorruptFileError, NetworkError, UsageError


def fetch(
    source: str = registry.DEFAULT,
    *,
    name: str | None = None,
    sha256: str | None = None,
    force: bool = False,
    mirror: str | None = None,
    max_bytes: int | None = None,
    progress: Progress | None = None,
    **network_knobs: Any,
) -> CorpusFile:
    """Make sure corpus `source` (a registry name, a cached name, `pysrc` or an http(s) URL) is
    cached and return it. A registry name is fetched from `mirror/NAME.txt` when `mirror` (or
    `CHARRNN_MIRROR`) is set; `CHARRNN_OFFLINE=1` forbids any request. `network_knobs` are the
    fields of `download.DownloadOptions` (timeouts, retries, backoff_factor, ...)."""
    opts = download.options(**network_knobs)
    expected = registry.check_sha(sha256)
    mirror = registry.mirror(mirror)
    cache.prepare()
    if max_bytes is not None and source != registry.PYSRC:
        raise UsageError("--max-bytes applies to the pysrc corpus only")
    if registry.is_url(source):
        registry.check_url(source)
        target = check_name(name if name is not None else registry.name_from_url(source))
        return _fetch_url(target, source, expected, None, force, progress, opts)
    if source == registry.PYSRC:
        if expected is not None:
            raise UsageError("pysrc is built locally: --sha256 does not apply to it")
        return build_pysrc(name or registry.PYSRC, max_bytes, force=force, progress=progress)
    if not registry.looks_like_name(source):
        raise UsageError(
            f"{source!r} is neither a corpus name nor an http(s) URL; "
            f"for a local file use `charrnn fetch --from {source}`"
        )
    entry = REGISTRY.get(source)
    if entry is None:
        return _fetch_cached_name(check_name(source), expected, force, progress, opts)
    if expected is not None and expected != entry.sha256:
        raise UsageError(f"--sha256 differs from the registry's sha256 for {source}")
    url = registry.source_url(entry, mirror)
    target = check_name(name or entry.name)
    return _fetch_url(target, url, entry.sha256, entry.size, force, progress, opts)


def _fetch_cached_name(
    name: str,
    expected: str | None,
    force: bool,
    progress: Progress | None,
    opts: download.DownloadOptions,
) -> CorpusFile:
    meta = cache.read_meta(name)
    problem = cache.meta_problem(name)
    if problem is not None:  # edited or damaged by hand: say which file, not "unknown"
        raise CorruptFileError(
            f"cached corpus {name!r} cannot be used: {problem}; import it again with "
            f"`charrnn fetch --from FILE --name {name}`, or fetch it again by its URL"
        )
    if meta is None:
        known = ", ".join(REGISTRY)
        raise UsageError(
            f"unknown corpus {name!r}: known names are {known}; or give an http(s) URL, "
            "or a local file with --from FILE (see `charrnn fetch --list`)"
        )
    source = str(meta.get("source", ""))
    if registry.is_url(source):
        pinned = expected or (meta.get("sha256") if meta.get("pinned") else None)
        return _fetch_url(name, source, pinned, None, force, progress, opts)
    if force:
        raise UsageError(
            f"{name!r} was imported from {source or 'a file'}, so --force cannot fetch it again; "
            f"import it again with `charrnn fetch --from FILE --name {name}`"
        )
    hit = cache.valid_cached(name, expected)
    if hit is not None:
        return hit
    raise CorruptFileError(
        f"cached corpus {name!r} (from {source or 'unknown'}) is missing, damaged or different; "
        f"import it again with `charrnn fetch --from FILE --name {name}`"
    )


def _fetch_url(
    name: str,
    url: str,
    expected: str | None,
    size: int | None,
    force: bool,
    progress: Progress | None,
    opts: download.DownloadOptions,
) -> CorpusFile:
    if not force and (hit := cache.valid_cached(name, expected, url)) is not None:
        return hit
    if registry.is_offline():
        raise NetworkError(
            f"CHARRNN_OFFLINE=1: not downloading {url}; unset CHARRNN_OFFLINE, or "
            + way_out(name, url)
        )
    with cache.lock(name, opts.lock_wait):
        if not force and (hit := cache.valid_cached(name, expected, url)) is not None:
            return hit  # another process fetched it while we waited
        try:
            sha, got = download.download(
                url,
                cache.blob_writer(name),
                expected_sha256=expected,
                expected_size=size,
                progress=progress,
                opts=opts,
                rename=cache.blob_path,
            )
        except NetworkError as exc:
            raise NetworkError(f"{exc}; {way_out(name, url)}") from None
        cache.write_meta(name, url, sha, got, pinned=expected is not None)
    return CorpusFile(name, cache.blob_path(sha), sha, got, url)


def way_out(name: str, url: str) -> str:
    """What to do when corpus `name` cannot be downloaded from `url`, as whole commands a user
    can paste (`charrnn train` takes none of fetch's options, so none is named alone): import a
    copy, fetch a registry corpus from a mirror (unless one is in use), or train offline."""
    entry = REGISTRY.get(name)
    mirror = (
        f", fetch it from a mirror with `charrnn fetch {name} --mirror URL`"
        if entry is not None and entry.url == url
        else ""
    )
    return (
        f"import a copy with `charrnn fetch --from FILE --name {name}`{mirror}, or train offline "
        "on Python's own sources: `charrnn fetch pysrc`, then `charrnn train --corpus pysrc`"
    )
