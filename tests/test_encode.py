"""Encoding: vocabulary, smallest dtype, non-ASCII text, the cache, and bad input."""

from __future__ import annotations

import random

import numpy as np
import pytest

from charrnn_cli.data import encode, idmaps
from charrnn_cli.errors import CharrnnError, CorruptFileError, WriteError
from charrnn_cli.vocab import BYTES


def test_ascii_vocab_is_sorted_and_ids_round_trip():
    ids, vocab = encode.encode_bytes(b"hello world")
    assert vocab == " dehlorw"
    assert ids.dtype == np.uint8
    assert "".join(vocab[i] for i in ids) == "hello world"


def test_non_ascii_text_round_trips():
    text = "héllo wörld ✓ — ROMEO:\n"
    ids, vocab = encode.encode_bytes(text.encode("utf-8"))
    assert list(vocab) == sorted(set(text))
    assert "".join(vocab[i] for i in ids) == text


def test_many_characters_take_uint16():
    text = "".join(chr(0x4E00 + i) for i in range(300))
    ids, vocab = encode.encode_bytes(text.encode())
    assert ids.dtype == np.uint16 and len(vocab) == 300


def test_non_utf8_is_refused_with_the_file_and_offset():
    with pytest.raises(CorruptFileError, match="notes.txt is not UTF-8 text at byte 3"):
        encode.encode_bytes(b"abc\xff\xfe", "notes.txt")


def test_encode_text_drops_unknown_and_counts_them():
    ids, dropped = encode.encode_text("abzc", "abc")
    assert ids.tolist() == [0, 1, 2] and dropped == 1
    assert encode.unknown_chars("aΩbΩé", "ab") == ["Ω", "é"]


def test_load_caches_by_sha256(tmp_path, charrnn_home):
    path = tmp_path / "t.txt"
    path.write_text("abcabcabd\n", encoding="utf-8")
    first = encode.load(path)
    cached = list((charrnn_home / "corpora" / "encoded").glob(f"{first.sha256}.*"))
    assert len(cached) == 2
    again = encode.load(path)
    assert again.vocab == first.vocab and np.array_equal(again.ids, first.ids)


def test_non_ascii_text_is_encoded_in_chunks_cut_between_characters(monkeypatch):
    monkeypatch.setattr(encode, "CHUNK", 7)  # forces cuts inside multi-byte characters
    text = "aé✓b—Ω\n" * 50
    ids, vocab = encode.encode_bytes(text.encode("utf-8"))
    assert "".join(vocab[i] for i in ids) == text
    with pytest.raises(CorruptFileError, match="at byte 0"):
        encode.encode_bytes(b"\x80" * 100)  # stray continuation bytes: an error, not a hang


def _plain_ids(text: str) -> tuple[list[int], str]:
    """The reference: the sorted distinct characters, and each character's index in them."""
    vocab = "".join(sorted(set(text)))
    index = {c: i for i, c in enumerate(vocab)}
    return [index[c] for c in text], vocab


@pytest.mark.parametrize("chunk", [5, 64, 1 << 24])
def test_streamed_encoding_equals_the_plain_one_and_is_mapped_read_only(
    tmp_path, chunk, monkeypatch
):
    monkeypatch.setattr(encode, "CHUNK", chunk)
    text = "".join(random.Random(chunk).choice("ab é言🙂\n" + "xyz" * 5) for _ in range(5000))
    path = tmp_path / "t.txt"
    path.write_text(text, encoding="utf-8")
    done = []
    got = encode.load(path, progress=lambda n, total: done.append((n, total)))
    ids, vocab = _plain_ids(text)
    assert got.vocab == vocab and got.ids.tolist() == ids and got.ids.dtype == np.uint8
    assert isinstance(got.ids, np.memmap) and not got.ids.flags.writeable
    assert got.counts.tolist() == np.bincount(ids).tolist() and got.distinct == len(vocab)
    size = path.stat().st_size
    assert done[-1] == (size, size) and [n for n, _ in done] == sorted(n for n, _ in done)


def test_more_than_256_characters_take_uint16_in_the_cache(tmp_path):
    text = "".join(chr(0x4E00 + i % 300) + "ab"[i % 2] for i in range(3000))
    path = tmp_path / "wide.txt"
    path.write_text(text, encoding="utf-8")
    got = encode.load(path)
    assert got.ids.dtype == np.uint16 and got.ids.tolist() == _plain_ids(text)[0]


@pytest.mark.parametrize("chunk", [3, 7, 1000])
def test_a_bad_byte_is_named_at_its_offset_whatever_the_chunks(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(encode, "CHUNK", chunk)
    good = "aé言b".encode() * 30
    for bad in (b"\xff", b"\xe8\xa8", b"\xc3(", b"\xed\xa0\x80"):  # lone, cut, broken, surrogate
        data = good + bad + good
        path = tmp_path / "bad.txt"
        path.write_bytes(data)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            where = exc.start
        with pytest.raises(CorruptFileError, match=f"bad.txt is not UTF-8 text at byte {where}"):
            encode.load(path)
    path.write_bytes(good + "言".encode()[:2])  # cut at the very end
    with pytest.raises(CorruptFileError, match=f"at byte {len(good)}"):
        encode.load(path)


def test_a_byte_run_reads_the_files_bytes(tmp_path, charrnn_home):
    data = "naïve café 言語\n".encode() * 10
    path = tmp_path / "b.txt"
    path.write_bytes(data)
    got = encode.load(path, kind="bytes")
    assert got.vocab == BYTES and got.ids.tolist() == list(data) and got.kind == "bytes"
    assert got.counts.tolist() == np.bincount(np.frombuffer(data, np.uint8), minlength=256).tolist()
    chars = encode.load(path)  # both kinds of one text are cached side by side
    assert len(chars.vocab) == len(set(data.decode())) and got.sha256 == chars.sha256
    names = sorted(p.name for p in (charrnn_home / "corpora" / "encoded").glob(f"{got.sha256}*"))
    assert names == [f"{got.sha256}.{ext}" for ext in ("bytes.json", "bytes.npy", "json", "npy")]


def test_a_file_changed_while_it_is_encoded_is_refused_and_nothing_is_cached(
    tmp_path, charrnn_home, monkeypatch
):
    monkeypatch.setattr(encode, "CHUNK", 100)
    path = tmp_path / "moving.txt"
    path.write_text("the cat sat on the mat.\n" * 100, encoding="utf-8")

    def edit(done: int, total: int | None) -> None:  # between the reads, another writer
        with open(path, "r+b") as fh:
            fh.seek(50)
            fh.write(b"MAT")

    with pytest.raises(CharrnnError, match="moving.txt changed while it was being encoded"):
        encode.load(path, progress=edit)
    assert not list((charrnn_home / "corpora" / "encoded").glob("*.npy"))
    assert not [p for p in path.parent.rglob(".*.tmp")]
    stale = "0" * 64  # the sha256 the caller checked is not the file's any more
    with pytest.raises(CharrnnError, match="changed while it was being encoded"):
        encode.load(path, sha256=stale)
    assert encode.load(path).ids.size == path.stat().st_size  # once still, it encodes


def test_a_cache_that_cannot_be_written_holds_the_ids_in_memory(tmp_path, monkeypatch):
    path = tmp_path / "t.txt"
    path.write_text("abcabcabd\n" * 10, encoding="utf-8")

    def refuse(*args, **kwargs):
        raise WriteError("cannot write: read-only file system")

    monkeypatch.setattr(encode.paths, "atomic_writer", refuse)
    got = encode.load(path)
    assert got.ids.tolist() == _plain_ids(path.read_text())[0]


def test_a_damaged_cache_entry_is_encoded_again(tmp_path, charrnn_home):
    path = tmp_path / "t.txt"
    path.write_text("abcabcabd\n" * 10, encoding="utf-8")
    first = encode.load(path)
    sha = first.sha256
    npy = charrnn_home / "corpora" / "encoded" / f"{sha}.npy"
    npy.write_bytes(npy.read_bytes()[:-10])  # truncated
    del first  # (its map shares the file just cut)
    again = encode.load(path, sha)
    assert again.ids.tolist() == _plain_ids(path.read_text())[0]


def _rss_file_kb() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("RssFile:"):
            return int(line.split()[1])
    pytest.skip("no /proc/self/status RssFile here")


def test_counting_a_mapped_tail_does_not_keep_it_resident(tmp_path):
    path = tmp_path / "big.txt"
    path.write_bytes(b"the cat sat on the mat.\n" * 1_000_000)  # 24 MB
    ids = encode.load(path).ids
    before = _rss_file_kb()
    counts = idmaps.count_ids(ids[4_000_000:], len(encode.load(path).vocab))
    assert counts.sum() == len(ids) - 4_000_000
    assert _rss_file_kb() - before < 4096  # the 20 MB read were let go
    int(np.asarray(ids[4_000_000:]).sum())  # the control: reading it keeps it resident
    assert _rss_file_kb() - before > 16_000
