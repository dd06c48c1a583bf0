"""`charrnn fetch` end to end through main(): data on stdout, one line on stderr, exit codes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from charrnn_cli import corpora
from charrnn_cli.storage import paths
from tests.helpers import cache_files, one_error_line, pinned_charrnn, stdin_bytes

pytest_plugins = ["httpserver"]
pytestmark = pytest.mark.usefixtures("fast_network")

TS_SHA = corpora.REGISTRY["tinyshakespeare"].sha256  # the real pin (the fixture pins its own)
TEXT = ("It was the best of times, it was the worst of times. ☃\n" * 3000).encode()
SHA = hashlib.sha256(TEXT).hexdigest()


def no_data_left() -> bool:
    return not any(n.endswith((".txt", ".json", ".tmp")) for n in cache_files())


def test_mirror_fetch_prints_the_path_and_print_path_reuses_it(cli, http_server, tinyshakespeare):
    ts_sha = corpora.REGISTRY["tinyshakespeare"].sha256  # as the fixture pinned it
    http_server.add("/tinyshakespeare.txt", tinyshakespeare)
    r = cli("fetch", "--mirror", http_server.url)
    path = paths.cache_dir() / "blobs" / f"{ts_sha}.txt"  # the text, stored by its sha256
    assert r.code == 0 and r.out == f"{path}\n"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == ts_sha
    assert "tinyshakespeare: fetched, 1,115,394 bytes" in r.err and "(verified)" in r.err
    r = cli("fetch", "--print-path")  # cached: no request, no mirror needed, quiet stderr
    assert (r.code, r.out, r.err) == (0, f"{path}\n", "")
    r = cli("fetch", "tinyshakespeare")
    assert r.code == 0 and "already cached" in r.err
    assert len(http_server.requests) == 1


def test_print_path_fetches_when_missing(cli, http_server, tinyshakespeare, monkeypatch):
    http_server.add("/tinyshakespeare.txt", tinyshakespeare)
    monkeypatch.setenv("CHARRNN_MIRROR", http_server.url)
    r = cli("fetch", "--print-path")
    assert r.code == 0 and Path(r.out.strip()).stat().st_size == 1_115_394


def test_quiet_keeps_stderr_empty(cli, http_server, tinyshakespeare):
    ts_sha = corpora.REGISTRY["tinyshakespeare"].sha256  # as the fixture pinned it
    http_server.add("/tinyshakespeare.txt", tinyshakespeare)
    r = cli("fetch", "--mirror", http_server.url, "--quiet")
    assert r.code == 0 and r.err == "" and r.out.strip().endswith(f"{ts_sha}.txt")


@pytest.mark.parametrize(
    ("faults", "code", "message"),
    [
        ({"fail_500": 2}, 0, ""),
        ({"fail_429": 1}, 0, ""),
        ({"cut_first": 1}, 0, ""),
        ({"cut_first": 1, "ignore_range": True}, 0, ""),
        ({"gzip": True}, 0, ""),
        ({"fail_500": 9}, 3, "HTTP 500"),
        ({"status": 404}, 3, "HTTP 404"),
        ({"stall": 2.0}, 3, "read timed out"),
    ],
    ids=["500-twice", "429", "cut", "range-ignored", "gzip", "500-always", "404", "stall"],
)
def test_faults_give_their_documented_result(cli, http_server, faults, code, message):
    http_server.add("/story.txt", TEXT, **faults)
    args = ("fetch", http_server.url + "/story.txt", "--sha256", SHA.upper(), "--timeout", "0.3")
    r = cli(*args)
    assert r.code == code, r.err
    if code == 0:
        assert r.out == f"{paths.cache_dir() / 'blobs' / f'{SHA}.txt'}\n"
        assert Path(r.out.strip()).read_bytes() == TEXT
    else:
        assert message in one_error_line(r.err) and "story.txt" in r.err and r.out == ""
        assert "`charrnn fetch pysrc`" in r.err and "--from FILE" in r.err
        assert no_data_left()


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"\x89PNG\r\n\x1a\n\x00\x00", "NUL byte"), (b"\xff\xfe", "not UTF-8"), (b"", "empty")],
    ids=["binary", "not-utf8", "empty"],
)
def test_binary_and_empty_downloads_are_refused(cli, http_server, body, message):
    http_server.add("/blob.txt", body)
    r = cli("fetch", http_server.url + "/blob.txt")
    assert r.code == 4 and message in one_error_line(r.err) and no_data_left()


def test_a_wrong_hash_names_both_and_leaves_the_good_file(cli, http_server, tinyshakespeare):
    ts_sha = corpora.REGISTRY["tinyshakespeare"].sha256  # as the fixture pinned it
    http_server.add("/good/tinyshakespeare.txt", tinyshakespeare)
    http_server.add("/bad/tinyshakespeare.txt", tinyshakespeare.replace(b"ROMEO", b"ROMEX"))
    assert cli("fetch", "--mirror", http_server.url + "/good").code == 0
    before = sorted(cache_files())
    r = cli("fetch", "--mirror", http_server.url + "/bad", "--force")
    assert r.code == 4
    assert f"expected {ts_sha}, got " in one_error_line(r.err)
    path = corpora.blob_path(ts_sha)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == ts_sha
    assert sorted(cache_files()) == before


def test_url_without_sha256_reports_and_records_the_hash(cli, http_server):
    http_server.add("/texts/Great%20Expectations.txt", TEXT)
    r = cli("fetch", http_server.url + "/texts/Great%20Expectations.txt")
    assert r.code == 0 and r.out.strip() == str(corpora.blob_path(SHA))
    assert SHA in r.err and "--sha256" in r.err and "Great-Expectations: fetched" in r.err
    meta = corpora.read_meta("Great-Expectations")
    assert meta["sha256"] == SHA and meta["source"].endswith("/Great%20Expectations.txt")
    r = cli("fetch", http_server.url + "/texts/Great%20Expectations.txt", "--name", "ge")
    assert r.code == 0 and r.out.strip() == str(corpora.blob_path(SHA))  # one text, two names
    assert corpora.read_meta("ge")["sha256"] == SHA


def test_a_dead_port_is_exit_3_without_a_traceback(cli, dead_url):
    r = cli("fetch", dead_url)
    assert r.code == 3 and "connection refused" in one_error_line(r.err)
    r = cli("fetch", "--mirror", dead_url.rsplit("/", 1)[0])
    assert r.code == 3 and "tinyshakespeare.txt" in one_error_line(r.err)
    assert no_data_left()


def _flags_outside_fetch_commands(message: str) -> set[str]:
    """The options a message names outside a whole `charrnn fetch ...` command in backticks."""
    import re

    fetches = re.findall(r"`charrnn fetch[^`]*`", message)
    rest = message
    for command in fetches:
        rest = rest.replace(command, "")
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", rest))


def test_a_failed_download_during_train_names_only_commands_to_paste(cli, dead_url, monkeypatch):
    """`charrnn train` takes none of fetch's options: its download error names whole commands,
    and `charrnn fetch pysrc` with the `--corpus pysrc` the next train needs; with a mirror in
    use, it does not suggest one."""
    from dataclasses import replace

    from charrnn_cli.cli import app

    entry = corpora.REGISTRY["tinyshakespeare"]
    monkeypatch.setitem(corpora.REGISTRY, "tinyshakespeare", replace(entry, url=dead_url))
    r = cli("train", "--max-steps", "1")
    line = one_error_line(r.err)
    assert r.code == 3 and "connection refused" in line
    assert "`charrnn fetch pysrc`, then `charrnn train --corpus pysrc`" in line
    assert "`charrnn fetch --from FILE --name tinyshakespeare`" in line
    assert "`charrnn fetch tinyshakespeare --mirror URL`" in line
    train_flags = {o for p in typer_command(app, "train").params for o in p.opts}
    assert _flags_outside_fetch_commands(line) <= train_flags
    monkeypatch.setenv("CHARRNN_MIRROR", dead_url.rsplit("/", 1)[0])
    r = cli("train", "--max-steps", "1")
    line = one_error_line(r.err)
    assert r.code == 3 and "--mirror" not in line and "charrnn train --corpus pysrc" in line


@pytest.mark.slow
def test_offline_a_copy_imported_under_the_registry_name_is_used_other_text_refused(
    cli, tinyshakespeare, tmp_path, monkeypatch
):
    """The way out the hints name: with no network, a copy of Tiny Shakespeare imported under
    its name makes `charrnn fetch` and the default `charrnn train` work as documented; other
    text under a registry name is refused (they would go on asking for the registry's)."""
    monkeypatch.setenv("CHARRNN_OFFLINE", "1")
    other = tmp_path / "other.txt"
    other.write_text("not Tiny Shakespeare at all\n" * 50, encoding="utf-8")
    r = cli("fetch", "--from", str(other), "--name", "tinyshakespeare")
    assert r.code == 2 and "another --name" in one_error_line(r.err)
    assert corpora.read_meta("tinyshakespeare") is None
    copy = tmp_path / "input.txt"
    copy.write_bytes(tinyshakespeare)
    assert cli("fetch", "--from", str(copy), "--name", "tinyshakespeare").code == 0
    assert cli("fetch").code == 0
    r = cli("train", "--max-steps", "1", "--hidden-size", "8", "--embed-size", "4", "--quiet")
    assert r.code == 0, r.err


def typer_command(app, name: str):
    import typer.main

    return typer.main.get_command(app).commands[name]


def test_offline_makes_no_request_and_names_the_way_out(cli, http_server, monkeypatch):
    http_server.add("/tinyshakespeare.txt", TEXT)
    monkeypatch.setenv("CHARRNN_OFFLINE", "1")
    r = cli("fetch", "--mirror", http_server.url)
    assert r.code == 3 and "CHARRNN_OFFLINE" in one_error_line(r.err)
    assert "charrnn fetch pysrc" in r.err
    r = cli("fetch", http_server.url + "/tinyshakespeare.txt", "--print-path")
    assert r.code == 3 and r.out == ""
    assert http_server.requests == []
    r = cli("fetch", "pysrc", "--max-bytes", "50000")
    assert r.code == 0 and Path(r.out.strip()).stat().st_size <= 50_000
    assert http_server.requests == []


def test_from_a_path(cli, tiny_corpus):
    r = cli("fetch", "--from", str(tiny_corpus))
    sha = hashlib.sha256(tiny_corpus.read_bytes()).hexdigest()
    assert r.code == 0 and r.out == f"{corpora.blob_path(sha)}\n"
    assert corpora.blob_path(sha).read_bytes() == tiny_corpus.read_bytes()
    assert corpora.read_meta("tiny")["source"] == f"file:{tiny_corpus.resolve()}"
    r = cli("fetch", "--from", str(tiny_corpus), "--name", "cats")
    assert r.code == 0 and "cats: imported" in r.err and corpora.read_meta("cats")["sha256"] == sha
    r = cli("fetch", "--from", str(tiny_corpus.with_name("absent.txt")))
    assert r.code == 2 and "no such file" in one_error_line(r.err)


def test_from_stdin(cli, monkeypatch):
    stdin_bytes(monkeypatch, "piped text ✓\n".encode())
    r = cli("fetch", "--from", "-", "--name", "piped")
    assert r.code == 0 and Path(r.out.strip()).read_text() == "piped text ✓\n"
    assert corpora.read_meta("piped")["source"] == "stdin"
    r = cli("fetch", "--from", "-")
    assert r.code == 2 and "--name" in one_error_line(r.err)
    stdin_bytes(monkeypatch, b"line one\nline \xe9two\n")
    r = cli("fetch", "--from", "-", "--name", "latin")
    assert r.code == 4 and "stdin is not UTF-8 text at byte 14" in one_error_line(r.err)
    assert not (paths.cache_dir() / "latin.txt").exists()


def test_list_piped_is_tab_separated(cli, tiny_corpus):
    r = cli("fetch", "--list")
    lines = [line.split("\t") for line in r.out.splitlines()]
    assert r.code == 0 and r.err == "" and all(len(f) == 5 for f in lines)
    assert lines[0] == [
        "tinyshakespeare",
        "missing",
        "1115394",
        TS_SHA,
        corpora.REGISTRY["tinyshakespeare"].url,
    ]
    assert [f[0] for f in lines] == ["tinyshakespeare", "shakespeare", "pysrc"]
    assert lines[1][2] == "-" and lines[2][1:4] == ["missing", "-", "-"]
    cli("fetch", "--from", str(tiny_corpus))
    last = cli("fetch", "--list").out.splitlines()[-1].split("\t")
    assert last[:3] == ["tiny", "cached", str(tiny_corpus.stat().st_size)]
    assert last[4] == f"file:{tiny_corpus.resolve()}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nosuch",), "unknown corpus 'nosuch'"),
        (("../etc/passwd",), "--from ../etc/passwd"),
        (("pysrc", "--name", "a/b"), "invalid corpus name"),
        (("--from", "x.txt", "tinyshakespeare"), "not both"),
        (("--list", "pysrc"), "--list takes no"),
        (("tinyshakespeare", "--max-bytes", "10"), "pysrc corpus only"),
        (("https://example.org/a.txt", "--sha256", "xyz"), "64 hex digits"),
        (("--timeout", "0"), "--timeout"),
    ],
)
def test_usage_mistakes_are_one_line_and_exit_2(cli, args, message):
    r = cli("fetch", *args)
    assert r.code == 2 and message in one_error_line(r.err)


def test_stale_temps_are_swept_by_a_fetch(cli, tiny_corpus):
    folder = paths.cache_dir()
    folder.mkdir(parents=True)
    stale = folder / ".tiny.txt.999999999.0badcafe.tmp"
    stale.write_bytes(b"half a corpus")
    assert cli("fetch", "--from", str(tiny_corpus)).code == 0
    assert not stale.exists()


def test_four_processes_fetching_at_once_end_with_one_good_file(
    http_server, tinyshakespeare, charrnn_home
):
    ts_sha = corpora.REGISTRY["tinyshakespeare"].sha256  # as the fixture pinned it
    http_server.add("/tinyshakespeare.txt", tinyshakespeare, chunk_delay=0.005)
    env = {**os.environ, "CHARRNN_HOME": str(charrnn_home)}
    command = [*pinned_charrnn("tinyshakespeare"), "fetch", "tinyshakespeare"]
    procs = [
        subprocess.Popen(
            [*command, "--mirror", http_server.url],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [(*p.communicate(timeout=60), p.returncode) for p in procs]
    path = corpora.blob_path(ts_sha)
    for out, err, code in results:
        assert code == 0, err
        assert out == f"{path}\n"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == ts_sha
    assert corpora.read_meta("tinyshakespeare")["sha256"] == ts_sha
    assert not [n for n in cache_files() if n.endswith(".tmp")]
    assert len(http_server.requests) == 1  # the lock: the others found it cached


def test_fetch_never_imports_torch_or_numpy(charrnn_home, tiny_corpus):
    code = (
        "import sys\nfrom charrnn_cli.cli import main\n"
        f"assert main(['fetch', '--from', {str(tiny_corpus)!r}, '--quiet']) == 0\n"
        "assert main(['fetch', '--list']) == 0\n"
        "assert not {'torch', 'numpy'} & set(sys.modules), 'torch or numpy imported'\n"
    )
    env = {**os.environ, "CHARRNN_HOME": str(charrnn_home)}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
