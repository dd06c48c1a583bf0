"""Encoding: vocabulary, smallest dtype, non-ASCII text, the cache, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from charrnn_cli import encode
from charrnn_cli.errors import CorruptFileError


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
