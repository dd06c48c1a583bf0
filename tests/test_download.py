"""download.py against a real local HTTP server: retries, Range resumes, restarts and checks."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from charrnn_cli.corpora import download
from charrnn_cli.errors import CorruptFileError, NetworkError

pytest_plugins = ["httpserver"]
pytestmark = pytest.mark.usefixtures("fast_network")

TEXT = ("Now is the winter of our discontent — made glorious summer. ñ€𝄞\n" * 4000).encode()
SHA = hashlib.sha256(TEXT).hexdigest()


def get(server, dest: Path, path: str = "/t.txt", **kw) -> tuple[str, int]:
    return download.download(server.url + path, dest, **kw)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_happy_path_hashes_checks_and_moves_into_place(http_server, tmp_path):
    http_server.add("/t.txt", TEXT)
    seen = []
    dest = tmp_path / "c" / "t.txt"
    sha, size = get(
        http_server,
        dest,
        expected_sha256=SHA,
        expected_size=len(TEXT),
        progress=lambda d, t: seen.append((d, t)),
    )
    assert (sha, size) == (SHA, len(TEXT)) and dest.read_bytes() == TEXT
    assert leftovers(dest.parent) == ["t.txt"]
    assert seen[-1] == (len(TEXT), len(TEXT))
    (req,) = http_server.requests
    assert req.headers["Accept-Encoding"] == "identity" and "Range" not in req.headers


@pytest.mark.parametrize(
    "faults", [{"fail_500": 2}, {"fail_429": 1}, {"fail_500": 1, "fail_429": 1}]
)
def test_500_and_429_are_retried(http_server, tmp_path, faults):
    route = http_server.add("/t.txt", TEXT, **faults)
    assert get(http_server, tmp_path / "t.txt", expected_sha256=SHA)[0] == SHA
    assert route.hits == sum(faults.values()) + 1


def test_500_until_retries_run_out_is_a_network_error(http_server, tmp_path):
    route = http_server.add("/t.txt", TEXT, fail_500=99)
    with pytest.raises(NetworkError, match=r"HTTP 500.*after 2 retries$"):
        get(http_server, tmp_path / "t.txt")
    assert route.hits == 3
    assert leftovers(tmp_path) == []


def test_404_is_a_network_error_at_once(http_server, tmp_path):
    with pytest.raises(NetworkError) as info:
        get(http_server, tmp_path / "t.txt", path="/missing.txt")
    msg = str(info.value)
    assert "HTTP 404" in msg and "/missing.txt" in msg and "\n" not in msg
    assert len(http_server.requests) == 1
    assert leftovers(tmp_path) == []


def test_a_cut_off_body_is_resumed_with_range(http_server, tmp_path):
    http_server.add("/t.txt", TEXT, cut_first=1)
    assert get(http_server, tmp_path / "t.txt", expected_sha256=SHA)[0] == SHA
    first, second = http_server.requests
    assert "Range" not in first.headers
    offset = int(second.headers["Range"].removeprefix("bytes=").removesuffix("-"))
    assert 0 < offset <= len(TEXT) // 2  # resumed from what reached the disk
    assert (tmp_path / "t.txt").read_bytes() == TEXT


def test_a_server_that_ignores_range_restarts_without_duplicating(http_server, tmp_path):
    http_server.add("/t.txt", TEXT, cut_first=1, ignore_range=True)
    sha, size = get(http_server, tmp_path / "t.txt")
    assert (sha, size) == (SHA, len(TEXT))
    assert "Range" in http_server.requests[1].headers
    assert (tmp_path / "t.txt").read_bytes() == TEXT


def test_a_206_from_the_wrong_offset_restarts_without_range(http_server, tmp_path):
    http_server.add("/t.txt", TEXT, cut_first=1, bad_content_range=True)
    assert get(http_server, tmp_path / "t.txt", expected_sha256=SHA)[0] == SHA
    assert [("Range" in r.headers) for r in http_server.requests] == [False, True, False]


def test_a_body_that_keeps_breaking_off_gives_up(http_server, tmp_path):
    http_server.add("/t.txt", TEXT, cut_first=99)
    with pytest.raises(NetworkError, match="kept breaking off"):
        get(http_server, tmp_path / "t.txt")
    assert len(http_server.requests) == download.DEFAULTS.resumes + 1
    assert leftovers(tmp_path) == []


def test_gzip_is_decoded_even_though_identity_was_asked(http_server, tmp_path):
    http_server.add("/t.txt", TEXT, gzip=True)
    assert get(http_server, tmp_path / "t.txt", expected_sha256=SHA)[0] == SHA
    assert http_server.requests[0].headers["Accept-Encoding"] == "identity"


def test_a_cut_gzip_body_restarts_instead_of_resuming(http_server, tmp_path):
    http_server.add("/t.txt", TEXT, gzip=True, cut_first=1)
    assert get(http_server, tmp_path / "t.txt", expected_sha256=SHA)[0] == SHA
    assert [("Range" in r.headers) for r in http_server.requests] == [False, False]


def test_a_stalled_server_fails_within_timeout_times_tries(http_server, tmp_path):
    http_server.add("/t.txt", TEXT, stall=2.0)
    opts = download.options(read_timeout=0.2, retries=1)
    start = time.monotonic()
    with pytest.raises(NetworkError, match="read timed out"):
        get(http_server, tmp_path / "t.txt", opts=opts)
    assert time.monotonic() - start < 1.5  # 2 tries x 0.2 s, well before the 2 s stall ends
    assert len(http_server.requests) == 2
    assert leftovers(tmp_path) == []


def test_a_wrong_hash_names_both_and_keeps_the_old_file(http_server, tmp_path):
    dest = tmp_path / "t.txt"
    dest.write_bytes(b"the good old file\n")
    http_server.add("/t.txt", b"not what you wanted\n")
    got = hashlib.sha256(b"not what you wanted\n").hexdigest()
    with pytest.raises(CorruptFileError) as info:
        get(http_server, dest, expected_sha256=SHA)
    assert f"expected {SHA}" in str(info.value) and f"got {got}" in str(info.value)
    assert dest.read_bytes() == b"the good old file\n"
    assert leftovers(tmp_path) == ["t.txt"]


def test_a_wrong_size_is_refused(http_server, tmp_path):
    http_server.add("/t.txt", TEXT)
    with pytest.raises(CorruptFileError, match="expected 12"):
        get(http_server, tmp_path / "t.txt", expected_size=12)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"PK\x03\x04\x00\x00binary", "NUL byte at byte 4"),
        (b"caf\xc3\xa9 ok\nbad \xff here\n", "not UTF-8 text at byte 13"),
        (b"ends mid-character \xe2\x82", "not UTF-8 text at byte 19"),
        (b"", "is empty"),
    ],
    ids=["binary", "invalid-utf8", "truncated-utf8", "empty"],
)
def test_binary_undecodable_and_empty_bodies_are_refused(http_server, tmp_path, body, message):
    http_server.add("/t.txt", body)
    with pytest.raises(CorruptFileError, match=message):
        get(http_server, tmp_path / "t.txt")
    assert leftovers(tmp_path) == []


def test_a_dead_port_is_a_network_error(tmp_path, dead_url):
    with pytest.raises(NetworkError, match="connection refused"):
        download.download(dead_url, tmp_path / "t.txt")
    assert leftovers(tmp_path) == []


def test_text_sink_checks_utf8_split_across_chunks(tmp_path):
    data = "añ€𝄞z".encode()
    with open(tmp_path / "f", "w+b") as fh:
        sink = download.TextSink(fh, "test")
        for i in range(len(data)):
            sink.write(data[i : i + 1])
        assert sink.finish() == (hashlib.sha256(data).hexdigest(), len(data))
    with pytest.raises(CorruptFileError, match="at byte 3"):
        sink = download.TextSink(None, "test")
        for b in (b"a", b"\xc3", b"\xb1", b"\xe2", b"z"):
            sink.write(b)


def test_options_refuses_unknown_knobs():
    with pytest.raises(TypeError, match="bogus"):
        download.options(bogus=1)
    assert download.options(retries=None).retries == download.DEFAULTS.retries
