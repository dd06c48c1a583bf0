"""paths.py: the one atomic writer (naming a file after writing it) and the one name rule."""

from __future__ import annotations

import pytest

from charrnn_cli.errors import UsageError
from charrnn_cli.storage import paths


def test_atomic_file_can_name_the_file_once_its_content_is_known(tmp_path):
    with paths.atomic_file(tmp_path / "placeholder.txt") as pending:
        pending.fh.write(b"abc")
        pending.final = tmp_path / f"named-{len(b'abc')}.txt"
    assert [p.name for p in tmp_path.iterdir()] == ["named-3.txt"]
    assert (tmp_path / "named-3.txt").read_bytes() == b"abc"


def test_atomic_file_keeps_the_old_file_when_the_writer_fails(tmp_path):
    final = tmp_path / "f.txt"
    final.write_bytes(b"old")
    with pytest.raises(RuntimeError), paths.atomic_writer(final) as fh:
        fh.write(b"half")
        raise RuntimeError
    assert final.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]
    with pytest.raises(ValueError, match="not in the folder"):
        with paths.atomic_file(final) as pending:
            pending.final = tmp_path / "elsewhere" / "f.txt"
    assert final.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


@pytest.mark.parametrize("name", ["a", "A.b_c-1", "x" * paths.NAME_MAX])
def test_good_names(name):
    assert paths.is_name(name) and paths.check_name(name, "run") == name


@pytest.mark.parametrize("name", ["", ".a", "-a", "a/b", "a..b", "/etc", "x" * 101, "ü"])
def test_bad_names_say_what_kind_and_why(name):
    assert not paths.is_name(name)
    with pytest.raises(UsageError, match="invalid corpus name .*: not allowed.* at most 100"):
        paths.check_name(name, "corpus")
