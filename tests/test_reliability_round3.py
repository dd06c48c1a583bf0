"""Reliability, round three (issue 23): each fault reproduced as a user meets it, then fixed.

One tiny run, trained once on CRLF text (so every text path meets a carriage return), is
copied per test. See docs/reliability.md, section "Round three".
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from charrnn_cli import console
from charrnn_cli.errors import WriteError
from charrnn_cli.storage import store
from tests.helpers import TINY, metrics

LINES = ["the cat sat on the mat.", "a dog ran to the log.", "we see the sea and the sky."]
CRLF_TEXT = "\r\n".join(LINES * 120) + "\r\n"


def one_line(err: str) -> str:
    assert "Traceback" not in err and "internal error" not in err, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run trained once on CRLF text; tests copy its home."""
    from charrnn_cli.cli import main

    root = tmp_path_factory.mktemp("round3")
    corpus = root / "crlf.txt"
    corpus.write_bytes(CRLF_TEXT.encode())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHARRNN_HOME", str(root / "home"))
        console.reset()
        code = main(["train", "--corpus", str(corpus), "--run", "m", *TINY, "--max-steps", "30",
                     "--eval-every", "15", "--quiet"])  # fmt: skip
        console.reset()
    assert code == 0
    return root


@pytest.fixture
def home(template: Path, charrnn_home: Path, tmp_path: Path) -> Path:
    """This test's CHARRNN_HOME: a copy of the template's (run `m`, its corpus cache)."""
    shutil.copytree(template / "home", charrnn_home)
    shutil.copy(template / "crlf.txt", tmp_path / "crlf.txt")
    return charrnn_home


# 1 -------------------------------------------------------------------------------------------


def test_the_largest_random_seed_trains_and_resumes(cli, tiny_corpus, charrnn_home):
    top = str(2**63 - 1)
    r = cli("train", "--corpus", str(tiny_corpus), "--run", "s", *TINY, "--random-seed", top,
            "--max-steps", "3", "--quiet")  # fmt: skip
    assert r.code == 0, r.err
    r = cli("train", "--run", "s", "--resume", "--max-steps", "5", "--quiet")
    assert r.code == 0, r.err


def test_the_restart_draws_of_ordinary_seeds_did_not_move():
    from charrnn_cli.data.batches import restart_mask

    for seed, step in [(0, 1), (3, 17), (12345, 999)]:
        gen = torch.Generator().manual_seed(seed * 1_000_003 + step)  # the formula before
        assert torch.equal(restart_mask(seed, step, 64, 0.3), torch.rand(64, generator=gen) < 0.3)
    top = 2**63 - 1
    assert not torch.equal(restart_mask(top, 1, 256, 0.5), restart_mask(top - 1, 1, 256, 0.5))


# 2 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stem", ["_names", "a..b", "__init__", "-x", ".hidden", "é", "...", "a" * 300]
)
def test_the_automatic_run_name_is_always_valid(stem):
    from charrnn_cli.storage import paths

    name = store.new_name(stem, "lstm")
    assert paths.is_name(name) and len(name) <= paths.NAME_MAX - 6, name


def test_training_on_a_file_named_underscore_names(cli, tmp_path, tiny_text, charrnn_home):
    corpus = tmp_path / "_names.txt"
    corpus.write_text(tiny_text)
    r = cli("train", "--corpus", str(corpus), *TINY, "--max-steps", "2", "--quiet")
    assert r.code == 0, r.err
    assert Path(r.out.strip()).name.startswith("names-lstm-")


# 11 ------------------------------------------------------------------------------------------


def test_a_default_name_taken_at_the_same_instant_moves_to_the_next(
    cli, tiny_corpus, charrnn_home, monkeypatch
):
    monkeypatch.setattr(store.time, "strftime", lambda fmt, *a: "20261203-1446")
    name = store.new_name("tiny", "lstm")
    with store.lock(name) as held:  # another trainer picked the same name and holds it
        assert held == name
        r = cli("train", "--corpus", str(tiny_corpus), *TINY, "--max-steps", "2", "--quiet")
    assert r.code == 0, r.err
    assert Path(r.out.strip()).name == f"{name}-2"
    assert not (charrnn_home / "runs" / name / "config.json").exists()


def test_a_name_the_user_gave_is_still_refused_when_busy(cli, tiny_corpus, charrnn_home):
    with store.lock("mine"):
        r = cli("train", "--corpus", str(tiny_corpus), "--run", "mine", *TINY, "--max-steps", "2")
    assert r.code == 5 and "being trained" in one_line(r.err)


# 3 -------------------------------------------------------------------------------------------


def dead_pid() -> int:
    """The pid of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_encodings_temp_file_is_swept_by_the_next_encoding(tmp_path, charrnn_home):
    from charrnn_cli.data import encode

    text = tmp_path / "t.txt"
    text.write_text("abcabd\n" * 50)
    sha = hashlib.sha256(text.read_bytes()).hexdigest()
    folder = charrnn_home / "corpora" / "encoded"
    folder.mkdir(parents=True)
    stale = [folder / f".{sha}.npy.{dead_pid()}.f546f5bf.tmp",
             folder / f".{'0' * 64}.1a2b3c4d5e6f7a8b.npy.{dead_pid()}.0badf00d.tmp"]  # fmt: skip
    for each in stale:
        each.write_bytes(b"\x93NUMPY partial")
    live = folder / f".{sha}.npy.{os.getppid()}.12345678.tmp"  # a live writer's: kept
    live.write_bytes(b"")
    assert encode.load(text, sha).ids.size == 350
    assert not any(p.exists() for p in stale) and live.exists()


# 7 -------------------------------------------------------------------------------------------


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_while_encoding_is_one_line_not_a_fallback(
    cli, tiny_corpus, charrnn_home, monkeypatch
):
    from charrnn_cli.data import encode

    monkeypatch.setattr(encode._Sink, "_write", enospc)
    r = cli("train", "--corpus", str(tiny_corpus), "--run", "f", *TINY, "--max-steps", "2")
    line = one_line(r.err)
    assert r.code == 1 and "no space left" in line and "the encoding needs" in line
    assert not list(charrnn_home.rglob("*.tmp")) and not (charrnn_home / "runs" / "f").exists()


def test_a_full_disk_while_moving_ids_for_a_fine_tune_is_one_line(tmp_path, monkeypatch):
    from charrnn_cli.data import encode, idmaps

    text = tmp_path / "t.txt"
    text.write_text("abcabd\n" * 50)
    mapped = encode.load(text)
    monkeypatch.setattr(idmaps, "IN_MEMORY", 1)
    monkeypatch.setattr(idmaps, "release", enospc)  # fails mid-write, as a full disk does
    with pytest.raises(WriteError, match="no space left on the device"):
        idmaps.remapped(mapped, mapped.vocab[::-1])


def test_a_read_only_cache_encodes_in_memory_and_says_so(
    cli, tiny_corpus, charrnn_home, monkeypatch
):
    from charrnn_cli.data import encode

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(encode._Sink, "_write", read_only)
    r = cli("train", "--corpus", str(tiny_corpus), "--run", "ro", *TINY, "--max-steps", "2",
            "--quiet")  # fmt: skip
    assert r.code == 0, r.err
    assert "warning: cannot cache the encoding" in r.err and "held in memory" in r.err


# 4, 5 ----------------------------------------------------------------------------------------


def test_invalid_utf8_in_viz_text_is_one_line(cli, home):
    bad = os.fsdecode(b"ab\xffcd")  # what Python makes of such argv bytes
    r = cli("viz", "surprise", "--run", "m", "--text", bad)
    assert r.code == 4 and "--text is not UTF-8 text at byte 2" in one_line(r.err)


def test_viz_reads_crlf_text_as_eval_does(cli, home, tmp_path):
    part = tmp_path / "part.txt"
    part.write_bytes((tmp_path / "crlf.txt").read_bytes()[:2000])
    r = cli("eval", "--run", "m", "--corpus", str(part), "--json")
    assert r.code == 0, r.err
    want = json.loads(r.out)["bits_per_char"]
    r = cli("viz", "surprise", "--run", "m", "--corpus", str(part), "--json")
    assert r.code == 0, r.err
    rows = [json.loads(line) for line in r.out.splitlines()]
    bits = [row["bits"] for row in rows if row["bits"] is not None]
    assert sum(row["char"] == "\r" for row in rows) > 50  # carriage returns kept as they are
    assert abs(sum(bits) / len(bits) - want) < 1e-6


@pytest.mark.parametrize("kind", ["surprise", "cells"])
def test_pages_escape_a_carriage_return(cli, home, tmp_path, kind):
    page = tmp_path / "p.html"
    r = cli("viz", kind, "--run", "m", "--corpus", str(tmp_path / "crlf.txt"), "--max-chars",
            "200", "--html", str(page))  # fmt: skip
    assert r.code == 0, r.err
    html = page.read_bytes()
    assert b"\r" not in html and html.count(b"&#13;") == CRLF_TEXT[:200].count("\r")


# 6 -------------------------------------------------------------------------------------------


def _move_corpus(home: Path, tmp_path: Path) -> dict:
    """The training file of run m moved away; returns its corpus record."""
    cfg = json.loads((home / "runs" / "m" / "config.json").read_text())
    moved = tmp_path / "moved.txt"
    shutil.move(tmp_path / "crlf.txt", moved)
    cfg["corpus"]["path"] = str(tmp_path / "crlf.txt")  # where it was trained: gone now
    (home / "runs" / "m" / "config.json").write_text(json.dumps(cfg))
    return cfg["corpus"]


def test_lines_without_novel_after_the_training_file_moved(cli, home, tmp_path):
    _move_corpus(home, tmp_path)
    r = cli("sample", "--run", "m", "--lines", "3", "--random-seed", "1")
    assert r.code == 0, r.err
    assert r.out.count("\n") == 3  # a line may hold a carriage return: not splitlines()
    warnings = [line for line in r.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "is gone" in warnings[0] and "capped at 1000" in warnings[0]
    r = cli("sample", "--run", "m", "--lines", "3", "--novel")
    assert r.code == 1 and "is gone" in one_line(r.err)  # --novel cannot do without it


def test_lines_find_the_corpus_by_its_sha256_in_the_cache(cli, home, tmp_path):
    from charrnn_cli import corpora

    record = _move_corpus(home, tmp_path)
    blob = corpora.blob_path(record["sha256"])
    blob.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(tmp_path / "moved.txt", blob)
    r = cli("sample", "--run", "m", "--lines", "3", "--novel", "--random-seed", "1")
    assert r.code == 0 and "warning" not in r.err, r.err


def test_novel_holds_8_bytes_a_line(tmp_path, monkeypatch):
    from charrnn_cli.sampling import lines

    monkeypatch.setattr(lines, "HASH_BLOCK", 7)  # several blocks, and a partial last one
    path = tmp_path / "list.txt"
    path.write_bytes(b"".join(b"line %d\n" % (i % 40) for i in range(100)))
    info = {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    found = lines.scan_corpus(info, hashes=True)
    assert found.hashes.dtype == np.uint64 and len(found.hashes) == 40
    assert list(found.hashes) == sorted(found.hashes)
    assert "line 39" in found and "line 40" not in found


# 9 -------------------------------------------------------------------------------------------


def test_eval_chars_1_is_refused_and_2_scores(cli, tiny_corpus, charrnn_home):
    base = ["train", "--corpus", str(tiny_corpus), *TINY, "--max-steps", "4", "--eval-every",
            "2", "--quiet"]  # fmt: skip
    r = cli(*base, "--run", "one", "--eval-chars", "1")
    assert r.code == 2 and "--eval-chars" in one_line(r.err)
    assert not (charrnn_home / "runs" / "one").exists()
    r = cli(*base, "--run", "two", "--eval-chars", "2")
    assert r.code == 0, r.err
    losses = [row["val_loss"] for row in metrics(charrnn_home, "two") if "val_loss" in row]
    assert losses and all(math.isfinite(x) for x in losses)
    r = cli("runs")
    assert r.code == 0 and "warning" not in r.err, r.err


# 10 ------------------------------------------------------------------------------------------

COMMANDS = [["sample", "--run", "m", "--len", "5"], ["eval", "--run", "m"],
            ["train", "--run", "m", "--resume", "--max-steps", "40"], ["runs"]]  # fmt: skip


@pytest.mark.parametrize(
    "section, key, value",
    [("model", "layers", 0), ("train", "seq_len", 0), ("model", "vocab", "Bytes"),
     ("model", "hidden_size", 10**6), ("train", "lr", 0), ("model", "vocab_size", 3)],
)  # fmt: skip
def test_a_value_out_of_range_in_config_json_is_one_line(cli, home, section, key, value):
    path = home / "runs" / "m" / "config.json"
    cfg = json.loads(path.read_text())
    cfg[section][key] = value
    path.write_text(json.dumps(cfg))
    for args in COMMANDS:
        r = cli(*args)
        if args[0] == "runs":  # the list shows the run and says what is wrong
            assert r.code == 0 and "config.json" in r.err and key in r.err, r.err
            continue
        if args[0] != "train" and r.code == 0:  # sampling and scoring read the checkpoint's
            continue  # own config (checked the same way), which is whole
        line = one_line(r.err)
        assert r.code == 4 and "config.json" in line and key in line, (args, line)


# 8 -------------------------------------------------------------------------------------------


def test_a_parent_removed_while_its_child_is_prepared_is_one_line(cli, home, tmp_path, monkeypatch):
    from charrnn_cli.training import jobs

    remap = jobs.lineage.remap

    def removed_meanwhile(*args, **kwargs):  # `charrnn runs rm m --yes` during the encoding
        assert cli("runs", "rm", "m", "--yes").code == 0
        return remap(*args, **kwargs)

    monkeypatch.setattr(jobs.lineage, "remap", removed_meanwhile)
    new = tmp_path / "new.txt"
    new.write_text("the cat sat on the mat, quietly.\n" * 80)
    r = cli(
        "train",
        "--init-from",
        "m",
        "--corpus",
        str(new),
        "--run",
        "child",
        "--max-steps",
        "2",
        "--quiet",
    )
    assert r.code == 1 and "lost its best.pt" in one_line(r.err)
    assert not (home / "runs" / "child").exists()


# 12 ------------------------------------------------------------------------------------------


def _aged_entry(tmp_path: Path, charrnn_home: Path) -> tuple[str, list[Path]]:
    """A plain file encoded (no stored text, no run refers to it yet), its files made old."""
    from charrnn_cli.data import encode

    text = tmp_path / "plain.txt"
    text.write_text("abcabd\n" * 50)
    sha = hashlib.sha256(text.read_bytes()).hexdigest()
    encode.load(text, sha)
    files = sorted((charrnn_home / "corpora" / "encoded").glob(f"{sha}.*"))
    assert {p.suffix for p in files} == {".npy", ".json", ".lock"}
    (charrnn_home / "corpora" / "blobs").mkdir(parents=True, exist_ok=True)
    return sha, files


def _age(files: list[Path]) -> None:
    from charrnn_cli.corpora import collecting

    old = time.time() - 2 * collecting.GRACE_S
    for p in files:
        os.utime(p, (old, old))


def test_gc_leaves_a_recent_encoding_no_run_refers_to_yet(cli, tmp_path, charrnn_home):
    sha, files = _aged_entry(tmp_path, charrnn_home)
    assert cli("fetch", "--gc").code == 0
    assert all(p.exists() for p in files)  # a trainer may be about to write its config.json
    _age(files)
    assert cli("fetch", "--gc").code == 0
    assert not any(p.exists() for p in files)


def test_gc_leaves_an_entry_whose_lock_a_writer_holds(cli, tmp_path, charrnn_home):
    from charrnn_cli.storage import locks

    sha, files = _aged_entry(tmp_path, charrnn_home)
    _age(files)
    lock = next(p for p in files if p.suffix == ".lock")
    with locks.file_lock(lock) as held:  # an encoder at work (flock: another open file)
        assert held.held
        _age([lock])  # taking it stamped the file: held longer than the grace period since
        assert cli("fetch", "--gc").code == 0
        assert all(p.exists() for p in files)


def test_a_lock_file_removed_by_its_holder_is_not_a_lock_for_the_next(tmp_path):
    from charrnn_cli.storage import locks

    path = tmp_path / "x.lock"
    got = []

    def second() -> None:
        with locks.file_lock(path, wait=10) as lock:
            same = os.fstat(lock.fh.fileno()).st_ino == path.stat().st_ino
            got.append((lock.held, same))

    with locks.file_lock(path) as first:
        assert first.held
        waiter = threading.Thread(target=second)
        waiter.start()
        time.sleep(0.3)  # the second has opened the file and waits for it
        path.unlink()  # what gc does, holding the lock
    waiter.join(15)
    assert got == [(True, True)]  # it locked the file at the path, not the removed one


# 15 ------------------------------------------------------------------------------------------


def test_sampled_bytes_decode_as_python_replace_does_in_any_pieces():
    import random

    from charrnn_cli.vocab import Utf8Bytes

    alphabet = [0x61, 0x0A, 0x80, 0xBF, 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0xED, 0xA0, 0xFF]
    rng = random.Random(5)
    for _ in range(300):
        data = bytes(rng.choice(alphabet) for _ in range(rng.randrange(40)))
        decoder, out, at = Utf8Bytes(), [], 0
        while at < len(data):
            step = rng.randrange(1, 6)
            out.append(decoder.feed(data[at : at + step].decode("latin-1")))
            at += step
        out.append(decoder.finish())
        want = data.decode("utf-8", "replace")  # (no U+FFFD in the input itself: no 0xEF)
        assert "".join(out) == want and decoder.replaced == want.count("\ufffd"), data


def test_decoding_many_invalid_bytes_takes_one_pass():
    from charrnn_cli.vocab import Utf8Bytes

    decoder = Utf8Bytes()
    start = time.perf_counter()
    text = decoder.feed("\xff" * 400_000) + decoder.finish()  # quadratic: 80 GB copied
    assert time.perf_counter() - start < 3.0
    assert text == "\ufffd" * 400_000 and decoder.replaced == 400_000


# 13 ------------------------------------------------------------------------------------------


def test_resuming_on_more_processes_checks_the_size_after_the_streams_are_re_split(
    cli, tmp_path, charrnn_home, monkeypatch
):
    from charrnn_cli.data import batches
    from charrnn_cli.training import jobs
    from charrnn_cli.training.distributed import Comm
    from charrnn_cli.training.train import Trainer

    small = tmp_path / "small.txt"  # 8 streams x 17 fit; 16 x 17 would not
    small.write_text(("abcab\n" * 50)[:240])
    r = cli("train", "--corpus", str(small), "--run", "r", *TINY, "--max-steps", "2", "--quiet")
    assert r.code == 0, r.err
    job = jobs.prepare(None, "r", True, None, {}, Comm(0, 2))

    class Dealt(Exception):
        pass

    def dealt(*args, **kwargs):
        raise Dealt  # past the size check: the rest needs a process group

    monkeypatch.setattr(batches, "deal", dealt)
    with pytest.raises(Dealt):
        Trainer(job, Comm(0, 2))
    assert job.train.batch_size == 4  # 8 streams shared by 2 processes
