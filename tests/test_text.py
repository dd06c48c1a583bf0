"""text.py: the one UTF-8 rule; a bad byte is named by its offset in the whole text."""

from __future__ import annotations

import io

import pytest

from charrnn_cli import text
from charrnn_cli.errors import CorruptFileError


def test_read_blocks_keeps_characters_split_between_blocks():
    data = "añ€𝄞z\n".encode() * 5
    for size in (1, 2, 3, 7, 100):
        blocks = list(text.read_blocks(io.BytesIO(data), "t", size))
        assert "".join(blocks) == data.decode() and all(len(b) <= size for b in blocks)


@pytest.mark.parametrize(
    ("data", "offset"), [(b"ok \xff", 3), ("é".encode() * 9 + b"\xc3(", 18), (b"cut \xe2\x82", 4)]
)
def test_a_bad_byte_is_named_by_its_offset_in_the_whole_text(data, offset):
    for size in (1, 4, 64):
        with pytest.raises(CorruptFileError, match=f"^in.txt is not UTF-8 text at byte {offset} "):
            list(text.read_blocks(io.BytesIO(data), "in.txt", size))
