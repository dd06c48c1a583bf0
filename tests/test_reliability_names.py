"""A name reused under a run: texts are stored by sha256, names point at them, runs refer to
their text by hash; `fetch --gc` frees only what nothing refers to; an old cache is migrated."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from charrnn_cli import corpora
from charrnn_cli.corpora import collecting
from charrnn_cli.errors import CorruptFileError
from charrnn_cli.storage import paths
from tests.helpers import TINY


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def two_texts(tmp_path: Path, tiny_text: str) -> tuple[Path, Path]:
    x, y = tmp_path / "x.txt", tmp_path / "y.txt"
    x.write_text(tiny_text, encoding="utf-8")
    y.write_text(tiny_text.upper(), encoding="utf-8")
    return x, y


def test_a_name_reused_under_a_run_keeps_the_run_working(cli, two_texts, charrnn_home):
    x, y = two_texts
    assert cli("fetch", "--from", str(x), "--name", "mine").code == 0
    assert cli("train", "--corpus", "mine", "--run", "old", *TINY, "--max-steps", "4").code == 0
    r = cli("fetch", "--from", str(y), "--name", "mine")  # an innocent re-import
    assert r.code == 0 and r.out.strip() == str(corpora.blob_path(sha(y.read_bytes())))
    r = cli("eval", "--run", "old", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["text"].startswith("mine")
    r = cli("train", "--run", "old", "--resume", "--max-steps", "6")
    assert r.code == 0, r.err
    assert cli("train", "--corpus", "mine", "--run", "new", *TINY, "--max-steps", "2").code == 0
    records = {
        run: json.loads((charrnn_home / "runs" / run / "config.json").read_text())["corpus"]
        for run in ("old", "new")
    }
    assert records["old"]["sha256"] == sha(x.read_bytes())  # what it was trained on
    assert records["new"]["sha256"] == sha(y.read_bytes())  # the name's text now
    assert Path(records["old"]["path"]).read_bytes() == x.read_bytes()


def test_gc_frees_only_the_texts_no_name_and_no_run_refers_to(cli, two_texts, charrnn_home):
    x, y = two_texts
    cli("fetch", "--from", str(x), "--name", "mine")
    assert cli("train", "--corpus", "mine", "--run", "r", *TINY, "--max-steps", "2").code == 0
    cli("fetch", "--from", str(y), "--name", "mine")
    z = x.with_name("z.txt")
    z.write_text("a third text, imported and then renamed away\n", encoding="utf-8")
    cli("fetch", "--from", str(z), "--name", "third")
    cli("fetch", "--from", str(y), "--name", "third")  # z's text: no name, no run
    blobs = {t: corpora.blob_path(sha(t.read_bytes())) for t in (x, y, z)}
    encoded = paths.cache_dir() / "encoded" / f"{sha(x.read_bytes())}.npy"
    assert all(b.exists() for b in blobs.values()) and encoded.exists()
    r = cli("fetch", "--list")  # says what --gc will do: nothing yet
    assert "0 nothing refers to" in r.err and "1 written in the last 10 minutes" in r.err
    r = cli("fetch", "--gc")  # everything was just written: kept for a while
    assert r.code == 0 and r.out == "" and all(b.exists() for b in blobs.values())
    old = time.time() - 2 * collecting.GRACE_S
    for blob in blobs.values():
        os.utime(blob, (old, old))
    r = cli("fetch", "--list")
    assert "1 texts no name points at, kept for the runs" in r.err and "1 nothing" in r.err
    r = cli("fetch", "--gc")
    assert r.code == 0 and r.out == f"{blobs[z]}\n", r.err
    assert "freed 1 texts" in r.err and "kept 1 named, 1 only for runs" in r.err
    assert blobs[x].exists() and blobs[y].exists() and not blobs[z].exists()
    assert cli("eval", "--run", "r").code == 0  # its text was kept
    assert cli("runs", "rm", "r", "--yes").code == 0
    r = cli("fetch", "--gc")
    assert r.out == f"{blobs[x]}\n" and not blobs[x].exists() and not encoded.exists()
    assert blobs[y].exists()  # still named twice


def test_gc_keeps_the_texts_a_damaged_config_still_names(cli, two_texts, charrnn_home):
    x, _ = two_texts
    cli("fetch", "--from", str(x), "--name", "mine")
    assert cli("train", "--corpus", "mine", "--run", "r", *TINY, "--max-steps", "2").code == 0
    config = charrnn_home / "runs" / "r" / "config.json"
    config.write_text(config.read_text()[:-40])  # cut: no longer JSON, the hash still in it
    (paths.cache_dir() / "mine.json").unlink()  # and no name points at the text
    assert collecting.collect(grace_s=0).freed == []
    assert corpora.blob_path(sha(x.read_bytes())).exists()


def _legacy_cache(text: bytes, name: str = "old") -> Path:
    """A cache as charrnn wrote it before content addressing: `<name>.txt` + `<name>.json`."""
    folder = paths.cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.txt").write_bytes(text)
    meta = {"name": name, "source": "file:/gone.txt", "sha256": sha(text), "size": len(text)}
    (folder / f"{name}.json").write_text(json.dumps(meta))
    return folder / f"{name}.txt"


def test_an_old_cache_is_migrated_in_place_without_a_download(monkeypatch, tiny_text):
    monkeypatch.setenv("CHARRNN_OFFLINE", "1")  # no download could happen
    text = tiny_text.encode()
    legacy = _legacy_cache(text)
    stray = paths.cache_dir() / "notes.txt"  # a file charrnn did not write: left alone
    stray.write_text("mine, not charrnn's\n")
    damaged = _legacy_cache(b"original\n", "hurt")
    damaged.write_bytes(b"altered!!\n")
    corpus = corpora.resolve("old")
    assert corpus.path == corpora.blob_path(sha(text)) and corpus.path.read_bytes() == text
    assert not legacy.exists() and stray.exists()
    rows = {r["name"]: r for r in corpora.list_corpora()}
    assert rows["old"]["status"] == "cached" and rows["hurt"]["status"] == "missing"
    assert corpora.blob_path(sha(b"altered!!\n")).exists()  # moved aside, not destroyed


def test_a_run_recorded_against_the_old_layout_finds_its_text_after_the_migration(tiny_text):
    text = tiny_text.encode()
    legacy = _legacy_cache(text)
    record = {"name": "old", "path": str(legacy), "sha256": sha(text), "source": "file:/x"}
    corpora.list_corpora()  # anything that migrates
    assert not legacy.exists()
    corpora.import_file(Path(__file__), "old")  # and the name reused since
    assert corpora.stored(record).path.read_bytes() == text


@pytest.mark.parametrize(
    "record",
    [None, [], "x", {"name": "a"}, {"sha256": 5}, {"sha256": "abc"}, {"sha256": "Z" * 64}],
    ids=["none", "list", "str", "no-sha", "int-sha", "short-sha", "not-hex"],
)
def test_a_damaged_corpus_record_is_a_corrupt_file_not_a_crash(record):
    with pytest.raises(CorruptFileError, match="corpus record in config.json"):
        corpora.stored(record)
