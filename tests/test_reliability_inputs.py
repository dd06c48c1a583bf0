"""Inputs of any size at the entry points that take text (`fetch --from -`, `eval --corpus`):
from nothing to more than a corpus, in bounded memory, or one line saying why not. (The seed
of `charrnn sample` is the sampler's, tested with it.)"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from charrnn_cli import corpora
from tests.helpers import TEMPLATE_TEXT as TEXT
from tests.helpers import one_line, stdin_bytes

LINE = "the cat sat on the mat. a dog ran to the log.\n"


@pytest.mark.parametrize(
    "data", [b"", b"a", "é".encode(), b"\n", (LINE * 70_000).encode()],
    ids=["0-bytes", "1-byte", "1-char-2-bytes", "newline", "3-MB"],
)  # fmt: skip
def test_fetch_from_stdin_takes_any_size(cli, monkeypatch, data):
    stdin_bytes(monkeypatch, data)
    r = cli("fetch", "--from", "-", "--name", "piped")
    if not data:
        assert r.code == 4 and "stdin is empty" in one_line(r.err)
        return
    assert r.code == 0, r.err
    assert Path(r.out.strip()).read_bytes() == data
    assert corpora.read_meta("piped")["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    "text", ["", "t", "th", "the cat", TEXT, TEXT * 2], ids=["0", "1", "2", "7", "corpus", "2x"]
)
def test_eval_takes_any_size(cli, run, monkeypatch, text):
    stdin_bytes(monkeypatch, text.encode())
    r = cli("eval", "--run", "m", "--corpus", "-", "--json")
    if len(text) < 2:
        assert r.code == 2 and "nothing to score" in one_line(r.err)
        return
    assert r.code == 0, r.err
    result = json.loads(r.out)
    # up to 16 streams, each losing its first character and the remainder of the split
    assert len(text) - 32 <= result["chars"] < len(text) and result["skipped"] == 0


def test_eval_never_holds_the_whole_text(cli, run, monkeypatch):
    """The text is scored in blocks of BLOCK_CHARS characters, whatever its size, so memory is
    bounded by the block (4,000,000 characters), not the input: here blocks of 1,000."""
    from charrnn_cli.data import encode

    seen: list[int] = []
    real = encode.encode_text

    def spy(text: str, vocab: str):
        seen.append(len(text))
        return real(text, vocab)

    monkeypatch.setattr("charrnn_cli.evaluate.BLOCK_CHARS", 1000)
    monkeypatch.setattr(encode, "encode_text", spy)
    stdin_bytes(monkeypatch, (TEXT * 3).encode())
    r = cli("eval", "--run", "m", "--corpus", "-", "--json")
    assert r.code == 0 and max(seen) <= 1000 and sum(seen) == len(TEXT) * 3, r.err
    assert json.loads(r.out)["chars"] > len(TEXT) * 3 * 0.9


def test_eval_reads_a_pipe_named_as_a_file(cli, run, tmp_path):
    """`charrnn eval --corpus <(zcat text.gz)`: the shell passes /dev/fd/N, a pipe."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text(TEXT))
    writer.start()
    r = cli("eval", "--run", "m", "--corpus", str(fifo), "--json")
    writer.join()
    assert r.code == 0 and json.loads(r.out)["chars"] >= len(TEXT) - 32, r.err


PEAK = """
import resource, subprocess, sys
with open(sys.argv[1], "rb") as stdin:
    code = subprocess.run(sys.argv[2:], stdin=stdin, stdout=subprocess.DEVNULL).returncode
print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _peak_kib(tmp_path: Path, size: int, *args: str) -> int:
    """The peak memory of `charrnn ARGS` reading `size` bytes of text on stdin."""
    src = tmp_path / f"in-{size}.txt"
    with open(src, "w", encoding="utf-8") as fh:
        for _ in range(size // len(LINE)):
            fh.write(LINE)
    command = [sys.executable, "-c", PEAK, str(src), sys.executable, "-m", "charrnn_cli", *args]
    code, peak = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
    assert code == "0"
    return int(peak)


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB is Linux's")
def test_a_large_stdin_is_imported_in_bounded_memory(tmp_path):
    """Twelve times the text, about the same peak: stdin is read, checked, hashed and written in
    chunks, never whole."""
    args = ("fetch", "--from", "-", "--name", "big", "--quiet")
    grown = _peak_kib(tmp_path, 48 << 20, *args) - _peak_kib(tmp_path, 4 << 20, *args)
    assert grown < 20_000, f"{grown / 1024:.0f} MiB more for 44 MiB more text"
