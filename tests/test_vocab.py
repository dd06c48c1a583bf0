"""The byte vocabulary: seeds as bytes, sampled bytes decoded as they come, characters counted."""

from __future__ import annotations

import random

import numpy as np
import pytest

from charrnn_cli import config, vocab


def _fed(data: bytes, cuts: list[int]) -> tuple[str, vocab.Utf8Bytes]:
    """`data` fed to a decoder in pieces cut at `cuts`, as the sampler yields it."""
    decoder = vocab.Utf8Bytes()
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    out = [decoder.feed(piece.decode("latin-1")) for piece in pieces]
    return "".join(out) + decoder.finish(), decoder


def test_bytes_fed_one_at_a_time_make_the_text_and_never_half_a_character():
    text = "naïve café, 言語の処理, Ελληνικά — “quoted” 🙂\n"
    data = text.encode("utf-8")
    decoder = vocab.Utf8Bytes()
    shown = [decoder.feed(chr(b)) for b in data]
    assert "".join(shown) + decoder.finish() == text and decoder.replaced == 0
    assert shown[data.index("言".encode()) + 1] == ""  # held back until its last byte


@pytest.mark.parametrize("seed", range(20))
def test_any_bytes_in_any_pieces_decode_as_pythons_replace_does(seed):
    rng = random.Random(seed)
    alphabet = [b"a", b"\n", "é".encode(), "言".encode(), "🙂".encode(), b"\xff", b"\x80", b"\xe8"]
    data = b"".join(rng.choice(alphabet) for _ in range(200))
    cuts = sorted(rng.sample(range(1, len(data)), 30))
    text, decoder = _fed(data, cuts)
    assert text == data.decode("utf-8", errors="replace")
    assert decoder.replaced == text.count("\ufffd")  # only the invalid ones: none is in the data
    text.encode("utf-8")  # valid UTF-8 to print


def test_a_character_cut_off_at_the_end_becomes_one_replacement():
    text, decoder = _fed("ab言".encode()[:-1], [1, 2, 3])
    assert text == "ab\ufffd" and decoder.replaced == 1


def test_readable_passes_characters_through_and_decodes_bytes():
    assert list(vocab.readable(iter(["a", "b"]), None)) == ["a", "b"]
    pieces = [chr(b) for b in "é!".encode()]
    assert "".join(vocab.readable(pieces, vocab.Utf8Bytes())) == "é!"


def test_seed_ids_and_characters_of_bytes():
    assert vocab.seed_ids("bé", "bytes", vocab.BYTES) == [98, 0xC3, 0xA9]
    assert vocab.seed_ids("ba", "chars", "ab") == [1, 0]
    data = np.frombuffer("aé言🙂".encode(), dtype=np.uint8)
    assert vocab.characters_in(data) == 4
    assert vocab.characters_in(data.reshape(2, 5)) == 4  # rows, as the held-out streams are


def test_a_config_stored_before_the_option_reads_characters():
    model, _ = config.from_dict({"model": {"cell": "gru", "vocab_size": 5}, "train": {}})
    assert model.vocab == "chars"
    assert vocab.BYTES == "".join(chr(i) for i in range(256))
