"""charrnn_cli/corpora/: names, the pysrc builder, the cache, the lock, resolve(), stored() and
list_corpora()."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path

import pytest

from charrnn_cli import corpora
from charrnn_cli.errors import CharrnnError, CorruptFileError, NetworkError, UsageError
from charrnn_cli.storage import paths, store
from tests.helpers import cache_files, stdin_bytes

pytest_plugins = ["httpserver"]
pytestmark = pytest.mark.usefixtures("fast_network")


@pytest.mark.parametrize("name", ["tiny", "a", "x.y_z-1", "Tiny2", "stdin-0123456789ab"])
def test_good_names(name):
    assert corpora.check_name(name) == name


@pytest.mark.parametrize(
    "name", ["", ".hidden", "-x", "a/b", "a..b", "..", "sp ace", "é", "a\\b", "a" * 101]
)
def test_bad_names_are_usage_errors(name):
    with pytest.raises(UsageError, match="invalid corpus name"):
        corpora.check_name(name)


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://example.org/data/input.txt", "input"),
        ("https://example.org/a/My%20Book%20(v2).txt?x=1", "My-Book-v2"),
        ("https://example.org/", "example.org"),
        ("https://example.org/..txt", "corpus"),
    ],
)
def test_name_from_url(url, name):
    assert corpora.name_from_url(url) == name
    corpora.check_name(name)


def fake_stdlib(root: Path) -> Path:
    files = {
        "b.py": "b = 2\n",
        "a.py": "a = 1",  # no final newline: one is added
        "pkg/z.py": "z = 'ž'\n",
        "pkg/__init__.py": "",
        "site-packages/evil.py": "no\n",
        "dist-packages/evil.py": "no\n",
        "latin1.py": b"x = '\xe9'\n",
        "notes.txt": "not python\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return root


def test_pysrc_is_sorted_headed_and_skips_what_it_should(tmp_path):
    root = fake_stdlib(tmp_path / "lib")
    text = b"".join(corpora.pysrc_chunks(10_000, root)).decode()
    assert text == (
        "# ==== a.py ====\na = 1\n"
        "# ==== b.py ====\nb = 2\n"
        "# ==== pkg/__init__.py ====\n\n"
        "# ==== pkg/z.py ====\nz = 'ž'\n"
    )
    assert text == b"".join(corpora.pysrc_chunks(10_000, root)).decode()  # deterministic


def test_pysrc_cap_cuts_at_a_file_boundary_or_a_character(tmp_path):
    root = fake_stdlib(tmp_path / "lib")
    two = b"# ==== a.py ====\na = 1\n# ==== b.py ====\nb = 2\n"
    assert b"".join(corpora.pysrc_chunks(len(two), root)) == two
    assert b"".join(corpora.pysrc_chunks(len(two) + 8, root)) == two + b"# ==== p"
    (root / "0.py").write_text("ž" * 50 + "\n", encoding="utf-8")
    head = len(b"# ==== 0.py ====\n")
    first = b"".join(corpora.pysrc_chunks(head + 5, root))
    assert first.decode() == "# ==== 0.py ====\nžž"  # 5 bytes hold two 2-byte characters


def test_pysrc_from_the_real_stdlib_works_offline(monkeypatch):
    monkeypatch.setenv("CHARRNN_OFFLINE", "1")
    corpus = corpora.fetch("pysrc", max_bytes=200_000)
    data = corpus.path.read_bytes()
    assert 190_000 < len(data) <= 200_000 and corpus.size == len(data)
    assert data.startswith(b"# ==== ") and b"site-packages/" not in data
    assert corpus.sha256 == hashlib.sha256(data).hexdigest() and corpus.source == "pysrc"
    meta = json.loads((paths.cache_dir() / "pysrc.json").read_text())
    assert meta["sha256"] == corpus.sha256 and meta["max_bytes"] == 200_000
    assert corpora.fetch("pysrc", max_bytes=200_000) == corpus  # cached, not rebuilt
    assert corpora.resolve("pysrc") == corpus  # no cap given: whatever is cached
    assert corpora.fetch("pysrc", max_bytes=100_000).size <= 100_000  # a new cap rebuilds


def test_registry_corpus_through_a_mirror_is_cached_once(http_server, tinyshakespeare):
    ts_sha = corpora.REGISTRY["tinyshakespeare"].sha256  # as the fixture pinned it
    http_server.add("/tinyshakespeare.txt", tinyshakespeare)
    corpus = corpora.fetch("tinyshakespeare", mirror=http_server.url + "/")
    assert corpus.sha256 == ts_sha and corpus.size == 1_115_394
    assert corpus.path == paths.cache_dir() / "blobs" / f"{ts_sha}.txt"  # stored by content
    assert corpus.source == http_server.url + "/tinyshakespeare.txt"
    meta = json.loads((paths.cache_dir() / "tinyshakespeare.json").read_text())
    assert {k: meta[k] for k in ("name", "sha256", "size")} == {
        "name": "tinyshakespeare",
        "sha256": ts_sha,
        "size": 1_115_394,
    }
    assert "fetched_at" in meta
    assert corpora.fetch("tinyshakespeare", mirror=http_server.url) == corpus
    assert len(http_server.requests) == 1


def test_mirror_from_the_environment(http_server, tinyshakespeare, monkeypatch):
    ts_sha = corpora.REGISTRY["tinyshakespeare"].sha256  # as the fixture pinned it
    http_server.add("/tinyshakespeare.txt", tinyshakespeare)
    monkeypatch.setenv("CHARRNN_MIRROR", http_server.url)
    assert corpora.resolve("tinyshakespeare").sha256 == ts_sha
    assert len(http_server.requests) == 1


def test_offline_makes_no_request(http_server, tinyshakespeare, monkeypatch):
    http_server.add("/tinyshakespeare.txt", tinyshakespeare)
    monkeypatch.setenv("CHARRNN_OFFLINE", "1")
    with pytest.raises(NetworkError, match="CHARRNN_OFFLINE=1.*charrnn fetch pysrc"):
        corpora.fetch("tinyshakespeare", mirror=http_server.url)
    with pytest.raises(NetworkError):
        corpora.fetch(http_server.url + "/tinyshakespeare.txt")
    assert http_server.requests == []
    monkeypatch.delenv("CHARRNN_OFFLINE")
    corpus = corpora.fetch("tinyshakespeare", mirror=http_server.url)
    monkeypatch.setenv("CHARRNN_OFFLINE", "1")
    assert corpora.resolve("tinyshakespeare") == corpus  # cached: fine offline
    with pytest.raises(NetworkError, match="CHARRNN_OFFLINE"):
        corpora.fetch("tinyshakespeare", mirror=http_server.url, force=True)
    assert len(http_server.requests) == 1


def test_a_damaged_cache_is_fetched_again(http_server, tinyshakespeare):
    ts_sha = corpora.REGISTRY["tinyshakespeare"].sha256  # as the fixture pinned it
    http_server.add("/tinyshakespeare.txt", tinyshakespeare)
    corpus = corpora.fetch("tinyshakespeare", mirror=http_server.url)
    corpus.path.write_bytes(tinyshakespeare[:-1] + b"?")
    assert corpora.list_corpora()[0]["status"] == "cached"  # same size: only the hash tells
    assert corpora.fetch("tinyshakespeare", mirror=http_server.url).sha256 == ts_sha
    assert corpus.path.read_bytes() == tinyshakespeare and len(http_server.requests) == 2


def test_url_without_sha_records_what_it_computed(http_server):
    http_server.add("/books/My%20Book.txt", b"hello\n")
    corpus = corpora.fetch(http_server.url + "/books/My%20Book.txt")
    assert corpus.name == "My-Book" and corpus.sha256 == hashlib.sha256(b"hello\n").hexdigest()
    assert corpora.fetch("My-Book") == corpus  # a cached name, no new request
    assert len(http_server.requests) == 1
    with pytest.raises(UsageError, match="64 hex"):
        corpora.fetch(http_server.url + "/x.txt", sha256="abc")


def test_the_lock_lets_a_waiting_fetch_find_the_corpus_cached(http_server, tinyshakespeare):
    ts_sha = corpora.REGISTRY["tinyshakespeare"].sha256  # as the fixture pinned it
    import fcntl

    http_server.add("/tinyshakespeare.txt", tinyshakespeare)
    folder = paths.cache_dir()
    folder.mkdir(parents=True)
    fd = os.open(folder / "tinyshakespeare.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)

    def other_process_finishes() -> None:
        time.sleep(0.3)
        (folder / "tinyshakespeare.txt").write_bytes(tinyshakespeare)
        meta = {"name": "tinyshakespeare", "source": "elsewhere", "sha256": ts_sha}
        meta["size"] = len(tinyshakespeare)
        (folder / "tinyshakespeare.json").write_text(json.dumps(meta))
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    thread = threading.Thread(target=other_process_finishes)
    thread.start()
    start = time.monotonic()
    corpus = corpora.fetch("tinyshakespeare", mirror=http_server.url)
    thread.join()
    assert time.monotonic() - start >= 0.25 and corpus.sha256 == ts_sha
    assert http_server.requests == []


def test_the_lock_wait_is_bounded(http_server):
    import fcntl

    http_server.add("/t.txt", b"text\n")
    folder = paths.cache_dir()
    folder.mkdir(parents=True)
    fd = os.open(folder / "t.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        start = time.monotonic()
        corpus = corpora.fetch(http_server.url + "/t.txt", lock_wait=0.2)
        assert 0.15 < time.monotonic() - start < 2 and corpus.size == 5
    finally:
        os.close(fd)


def test_stale_temps_of_dead_processes_are_swept(http_server):
    folder = paths.cache_dir()
    folder.mkdir(parents=True)
    dead = folder / ".t.txt.999999999.deadbeef.tmp"
    mine = paths.temp_path(folder / "other.txt")
    dead.write_bytes(b"half")
    mine.write_bytes(b"in progress")
    http_server.add("/t.txt", b"text\n")
    corpora.fetch(http_server.url + "/t.txt")
    assert not dead.exists() and mine.exists()


def test_resolve_a_path_uses_it_in_place(tmp_path):
    path = tmp_path / "my notes.txt"
    path.write_text("some text\n", encoding="utf-8")
    corpus = corpora.resolve(str(path))
    assert corpus.path == path.resolve() and corpus.name == "my notes" and corpus.size == 10
    assert corpus.source == f"file:{path.resolve()}" and cache_files() == []
    path.write_bytes(b"ok\n\xffno")
    with pytest.raises(CorruptFileError, match="not UTF-8 text at byte 3"):
        corpora.resolve(str(path))
    with pytest.raises(UsageError, match="no corpus or file named"):
        corpora.resolve(str(tmp_path / "absent.txt"))
    with pytest.raises(UsageError, match="no corpus or file named 'nosuch'"):
        corpora.resolve("nosuch")


def test_resolve_stdin_imports_it_under_its_hash(monkeypatch):
    data = b"to be or not to be\n"
    stdin_bytes(monkeypatch, data)
    corpus = corpora.resolve("-")
    sha = hashlib.sha256(data).hexdigest()
    assert corpus.name == f"stdin-{sha[:12]}" and corpus.sha256 == sha and corpus.source == "stdin"
    assert corpus.path.read_bytes() == data
    assert corpora.resolve(corpus.name) == corpus  # a resume finds it by name
    stdin_bytes(monkeypatch, b"bad \xc3\x28 byte\n")
    with pytest.raises(CorruptFileError, match="stdin is not UTF-8 text at byte 4"):
        corpora.resolve("-")
    assert [n for n in cache_files() if n.endswith(".tmp")] == []


def test_import_file_and_list(tmp_path, monkeypatch):
    src = tmp_path / "poems.txt"
    src.write_text("roses\n", encoding="utf-8")
    corpus = corpora.import_file(src, "poems")
    assert corpus.source == f"file:{src}" and corpus.path.read_text() == "roses\n"
    stdin_bytes(monkeypatch, b"piped\n")
    assert corpora.import_file("-", "piped").source == "stdin"
    rows = {r["name"]: r for r in corpora.list_corpora()}
    assert list(rows)[:3] == ["tinyshakespeare", "shakespeare", "pysrc"]
    assert rows["tinyshakespeare"]["status"] == "missing"
    assert rows["poems"]["status"] == "cached" and rows["piped"]["size"] == 6
    corpus.path.write_text("roses are red\n")  # the stored text altered by hand
    assert {r["name"]: r for r in corpora.list_corpora()}["poems"]["status"] == "damaged"
    with pytest.raises(CorruptFileError, match="import it again"):
        corpora.resolve("poems")
    with pytest.raises(UsageError, match="no such file"):
        corpora.import_file(tmp_path / "absent.txt", "x")


def test_names_follow_the_one_rule_of_runs_too():
    longest = "a" * 100
    assert corpora.check_name(longest) == longest == store.check_name(longest)
    assert len(corpora.sanitize_name("b" * 300)) == 100
    with pytest.raises(UsageError, match="invalid run name 'a/b': not allowed"):
        store.check_name("a/b")


def test_stored_finds_a_runs_corpus_and_refuses_changed_text(tmp_path):
    src = tmp_path / "poems.txt"
    src.write_text("roses\n", encoding="utf-8")
    used = corpora.resolve(str(src))  # trained on in place
    record = {"name": used.name, "path": str(used.path), "sha256": used.sha256}
    record["source"] = used.source
    assert corpora.stored(record) == used
    cached = corpora.import_file(src, "poems")
    src.write_text("roses are red\n", encoding="utf-8")  # changed: found again by its hash
    assert corpora.stored(record).path == cached.path
    corpora.import_file(src, "poems")  # the name now holds other text: the old text stays
    assert corpora.stored(record).path == cached.path
    cached.path.unlink()  # the text itself gone (by hand), the name on other text
    with pytest.raises(CharrnnError, match="no longer cached and its name now holds other"):
        corpora.stored(record)
    src.write_text("roses\n", encoding="utf-8")
    corpora.import_file(src, "again")  # the same text imported again, under any name
    assert corpora.stored(record).path == cached.path
    assert corpora.stored({**record, "name": "gone"}).path == cached.path  # by hash, not name
    cached.path.unlink()
    src.write_text("violets\n", encoding="utf-8")  # nor is it at the path trained on
    with pytest.raises(CharrnnError, match="no longer cached and its name is not cached either"):
        corpora.stored({**record, "name": "gone"})
