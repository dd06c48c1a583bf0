"""Downloads and the corpus cache under faults the other fetch tests do not reach: malformed URLs,
a server that asks to wait (Retry-After), `kill -9` mid-transfer, a full disk and a read-only
cache. Each case ends with one line on stderr, its exit code, and nothing half-written.

Subprocesses here run `charrnn fetch`, which never imports torch, so each costs a fraction of a
second. See docs/reliability.md for the whole matrix.
"""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from charrnn_cli import corpora
from charrnn_cli.corpora import download
from charrnn_cli.storage import paths
from tests.helpers import cache_files, one_error_line, spawn, without_root_override

pytest_plugins = ["httpserver"]

TEXT = ("It was the best of times, it was the worst of times. ☃\n" * 12000).encode()  # 684 KB
SHA = hashlib.sha256(TEXT).hexdigest()


def data_files() -> list[str]:
    """What a fetch leaves in the cache besides its lock files."""
    return [n for n in cache_files() if not n.endswith(".lock")]


def fsize_limit(limit: int):
    """preexec_fn: a file-size limit of `limit` bytes, the way a full disk looks to a writer
    (SIGXFSZ ignored, so the write fails with EFBIG instead of killing the process)."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def fetch_proc(*args: str, timeout: float = 60, **kw) -> tuple[int, str, str]:
    proc = spawn("fetch", *args, **kw)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.mark.usefixtures("fast_network")
@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://", "names no host"),
        ("http:///corpus.txt", "names no host"),
        pytest.param("https://[::1/corpus.txt", "Invalid IPv6 URL", id="unclosed-ipv6"),
        ("http://127.0.0.1:99999/corpus.txt", "Port out of range"),
        ("http://127.0.0.1:port/corpus.txt", "Port could not be cast"),
        ("http://exa mple.org/corpus.txt", "spaces"),
    ],
)
def test_a_malformed_url_is_a_usage_error_and_makes_no_request(cli, http_server, url, why):
    r = cli("fetch", url)
    line = one_error_line(r.err)
    assert r.code == 2 and "malformed URL" in line and why in line, line
    assert r.out == "" and data_files() == []
    r = cli("fetch", "--mirror", url.rsplit("/", 1)[0] if url.count("/") > 2 else url)
    assert r.code == 2 and "malformed URL" in one_error_line(r.err)
    assert http_server.requests == []


class _SlowDown(BaseHTTPRequestHandler):
    """429 with Retry-After: 1 on the first request, then the text."""

    protocol_version = "HTTP/1.1"
    times: list[float] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.times.append(time.monotonic())
        first = len(self.times) == 1
        body = b"wait a second\n" if first else TEXT
        self.send_response(429 if first else 200)
        if first:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_429_with_retry_after_waits_as_asked_then_succeeds(tmp_path):
    _SlowDown.times = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _SlowDown)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/t.txt"
        opts = download.options(retries=2, backoff_factor=0.0, max_retry_after=5.0)
        sha, size = download.download(url, tmp_path / "t.txt", expected_sha256=SHA, opts=opts)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
    assert (sha, size) == (SHA, len(TEXT)) and (tmp_path / "t.txt").read_bytes() == TEXT
    first, second = _SlowDown.times
    assert second - first >= 0.9  # Retry-After: 1 honoured, not retried at once


def test_kill_9_mid_transfer_leaves_no_partial_file_and_a_rerun_sweeps_it(
    cli, http_server, fast_network
):
    route = http_server.add("/story.txt", TEXT, chunk_delay=0.1)  # about 4 s to trickle out
    proc = spawn("fetch", http_server.url + "/story.txt", "--sha256", SHA)
    folder = paths.cache_dir() / "blobs"  # texts are written among the stored ones
    deadline = time.monotonic() + 30
    temps: list[Path] = []
    while time.monotonic() < deadline and proc.poll() is None:
        temps = [p for p in folder.glob(".story.txt.*.tmp")] if folder.is_dir() else []
        if temps and temps[0].stat().st_size > 0:
            break
        time.sleep(0.01)
    assert temps and proc.poll() is None, "the fetch never started writing"
    proc.kill()
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    # the partial body is only ever in a temp: no stored text, no name
    assert not (folder / f"{SHA}.txt").exists() and not corpora.meta_path("story").exists()
    assert [p.name for p in folder.glob("*.tmp")] == [temps[0].name]
    route.chunk_delay = 0.0
    r = cli("fetch", http_server.url + "/story.txt", "--sha256", SHA)
    assert r.code == 0, r.err
    assert (folder / f"{SHA}.txt").read_bytes() == TEXT
    assert not list(folder.glob("*.tmp"))  # the dead process's temp was swept


def test_a_full_disk_during_a_download_is_one_line_and_keeps_the_old_file(
    cli, http_server, fast_network
):
    old = b"the previous good version\n"
    http_server.add("/old/story.txt", old)
    http_server.add("/story.txt", TEXT)
    assert cli("fetch", http_server.url + "/old/story.txt", "--name", "story").code == 0
    before = {n: (paths.cache_dir() / n).read_bytes() for n in data_files()}
    n_requests = len(http_server.requests)
    flags = ("--name", "story", "--force", "--retries", "0")
    code, out, err = fetch_proc(
        http_server.url + "/story.txt", *flags, preexec_fn=fsize_limit(100_000)
    )
    line = one_error_line(err)
    assert code == 1 and out == "", err
    assert "cannot write" in line and "story.txt" in line and "file too large" in line
    assert {n: (paths.cache_dir() / n).read_bytes() for n in data_files()} == before
    # the disk, not the network, failed: one request, not retried as a cut-off body
    assert len(http_server.requests) == n_requests + 1


def test_a_full_disk_during_an_import_leaves_nothing(tmp_path):
    src = tmp_path / "big.txt"
    src.write_bytes(TEXT)
    code, out, err = fetch_proc("--from", str(src), preexec_fn=fsize_limit(100_000))
    line = one_error_line(err)
    assert code == 1 and out == "" and "cannot write" in line and "big.txt" in line
    assert data_files() == []


@pytest.fixture
def read_only_cache(cli, tmp_path):
    """A cache holding one corpus ('kept'), then made read-only, every folder of it (for root
    too, in children)."""
    src = tmp_path / "kept.txt"
    src.write_text("a corpus cached before the folder went read-only\n", encoding="utf-8")
    assert cli("fetch", "--from", str(src)).code == 0
    folder = paths.cache_dir()
    if os.geteuid() == 0:
        try:  # check that this system lets a child give up root's override
            spawn("--version", preexec_fn=without_root_override).communicate(timeout=30)
        except (OSError, subprocess.SubprocessError) as exc:  # pragma: no cover
            pytest.skip(f"cannot drop root's permission override here: {exc}")
    folders = [folder, *(p for p in folder.iterdir() if p.is_dir())]
    for each in folders:
        each.chmod(0o555)
    try:
        yield folder
    finally:
        for each in folders:
            each.chmod(0o755)


def test_a_read_only_cache_refuses_new_corpora_in_one_line_and_serves_cached_ones(
    read_only_cache, http_server, tmp_path
):
    http_server.add("/story.txt", TEXT)
    before = cache_files()
    code, out, err = fetch_proc(
        http_server.url + "/story.txt", "--retries", "0", preexec_fn=without_root_override
    )
    line = one_error_line(err)
    assert code == 1 and out == "" and "permission denied" in line and "story.txt" in line
    other = tmp_path / "other.txt"
    other.write_text("more text\n", encoding="utf-8")
    code, out, err = fetch_proc("--from", str(other), preexec_fn=without_root_override)
    assert code == 1 and "permission denied" in one_error_line(err)
    code, out, err = fetch_proc("kept", preexec_fn=without_root_override)  # reading is fine
    kept = corpora.read_meta("kept")["sha256"]
    assert code == 0 and out.strip() == str(corpora.blob_path(kept)), err
    assert cache_files() == before


def test_the_cache_is_consistent_after_every_fault_above(cli, http_server, fast_network):
    """After a cut, a restart and a refused hash, every cached corpus matches its metadata."""
    http_server.add("/a.txt", TEXT, cut_first=1)
    http_server.add("/b.txt", TEXT, cut_first=1, ignore_range=True)
    http_server.add("/c.txt", TEXT.replace(b"best", b"beast"))
    assert cli("fetch", http_server.url + "/a.txt", "--sha256", SHA).code == 0
    assert cli("fetch", http_server.url + "/b.txt", "--sha256", SHA).code == 0
    assert cli("fetch", http_server.url + "/c.txt", "--sha256", SHA).code == 4
    for name in ("a", "b"):
        meta = corpora.read_meta(name)
        data = corpora.blob_path(meta["sha256"]).read_bytes()
        assert data == TEXT and meta["sha256"] == SHA and meta["size"] == len(TEXT)
    assert corpora.read_meta("c") is None
    assert cache_files() == ["a.json", "a.lock", "b.json", "b.lock", f"blobs/{SHA}.txt", "c.lock"]
    assert not [n for n in cache_files() if n.endswith(".tmp")]
