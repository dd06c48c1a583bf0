"""Ids in a memory-mapped file: moved onto a fine-tuned run's vocabulary into a cache entry of
their own (mapped, checked, written again when damaged), counted, their pages let go."""

from __future__ import annotations

import json

import numpy as np
import pytest

from charrnn_cli.data import encode, idmaps
from charrnn_cli.errors import CharrnnError
from charrnn_cli.storage import paths

TEXT = "the cat sat on the mat; a bat!\n" * 50


@pytest.fixture
def mapped(tmp_path, charrnn_home, monkeypatch):
    """A cached (memory-mapped) encoding, large enough for a cache entry of its own."""
    monkeypatch.setattr(idmaps, "IN_MEMORY", 100)
    path = tmp_path / "t.txt"
    path.write_text(TEXT, encoding="utf-8")
    data = encode.load(path, encode.load(path).sha256)
    assert isinstance(data.ids, np.memmap)
    return data


def _entry(data: encode.Encoded) -> list[str]:
    folder = paths.cache_dir() / "encoded"
    return sorted(p.name for p in folder.glob(f"{data.sha256}.*.npy"))


def test_a_mapped_corpus_is_moved_into_a_mapped_entry_of_its_own(mapped):
    vocab = "zt" + "".join(c for c in mapped.vocab if c != "t")  # t moves, z is new
    moved = idmaps.remapped(mapped, vocab)
    assert isinstance(moved.ids, np.memmap) and moved.vocab == vocab
    assert "".join(vocab[i] for i in moved.ids) == TEXT
    assert moved.counts.tolist() == [TEXT.count(c) for c in vocab]
    assert len(_entry(mapped)) == 1
    again = idmaps.remapped(mapped, vocab)  # read from the entry, not written again
    assert np.array_equal(again.ids, moved.ids) and len(_entry(mapped)) == 1


def test_a_damaged_entry_is_written_again_never_used(mapped):
    vocab = mapped.vocab[::-1]
    idmaps.remapped(mapped, vocab)
    npy = paths.cache_dir() / "encoded" / _entry(mapped)[0]
    ids = np.load(npy)
    np.save(npy, ids[::-1].copy())  # same shape and dtype, other ids
    moved = idmaps.remapped(mapped, vocab)
    assert "".join(vocab[i] for i in moved.ids) == TEXT
    meta = npy.with_suffix(".json")
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "vocab": "abc"}))
    assert "".join(vocab[i] for i in idmaps.remapped(mapped, vocab).ids) == TEXT


def test_an_unwritable_cache_moves_the_ids_in_memory(mapped, monkeypatch):
    def refuse(*a, **k):
        raise OSError("read-only file system")

    monkeypatch.setattr(paths, "atomic_writer", refuse)
    vocab = mapped.vocab[::-1]
    moved = idmaps.remapped(mapped, vocab)
    assert not isinstance(moved.ids, np.memmap) and not _entry(mapped)
    assert "".join(vocab[i] for i in moved.ids) == TEXT


def test_a_vocabulary_without_a_character_of_the_text_is_refused(mapped):
    with pytest.raises(CharrnnError, match="outside the run's vocabulary: 't'"):
        idmaps.remapped(mapped, mapped.vocab.replace("t", ""))


def test_a_piece_is_moved_in_memory_and_the_same_vocabulary_moves_nothing(mapped):
    vocab = mapped.vocab[::-1]
    piece = idmaps.remap_ids(mapped.ids[:40], mapped.vocab, vocab)
    assert "".join(vocab[i] for i in piece) == TEXT[:40]
    assert idmaps.remapped(mapped, mapped.vocab) is mapped


def test_moving_ids_into_a_new_entry_reports_its_progress(mapped, monkeypatch):
    monkeypatch.setattr(idmaps, "CHUNK", 512)  # several pieces
    heard: list[tuple[int, int | None]] = []
    idmaps.remapped(mapped, mapped.vocab[::-1], lambda done, total: heard.append((done, total)))
    total = len(mapped.ids)
    assert len(heard) > 2 and all(t == total for _, t in heard) and heard[0][0] == 0
    assert [d for d, _ in heard] == sorted({d for d, _ in heard}) and heard[-1][0] == total
    heard.clear()
    idmaps.remapped(mapped, mapped.vocab[::-1], lambda done, total: heard.append((done, total)))
    assert heard == []  # read from the entry: nothing to report
