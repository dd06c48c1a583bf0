"""Round four, the class "every path charrnn writes for a user" (docs/reliability.md, W1-W4
and W7): every writer of a user-named path (export as a folder, ONNX and a page, `viz
surprise/cells --html`, `viz gates --plot`, `runs show --plot`) against what may already be
there: a file, a folder of the user's, an export of charrnn's own, an empty folder, a symbolic
link, a FIFO and a device node. Nothing of the user's is removed or replaced without --force,
and with it only charrnn's own output; a FIFO or a device is written into, never renamed over.
Then a folder that appears at the path while an export runs (with renameat2 and without), and
a kill -9 during a folder export."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from charrnn_cli.storage import outputs, renames
from tests.helpers import one_line

TEXT = "the cat sat on the mat. "
WRITERS: dict[str, tuple[Callable[[str], list[str]], bool]] = {  # argv for a path; folder?
    "export": (lambda p: ["export", "--run", "m", "--output", p], True),
    "export-onnx": (lambda p: ["export", "--run", "m", "--format", "onnx", "--output", p], False),
    "export-html": (lambda p: ["export", "--run", "m", "--format", "html", "--output", p], False),
    "viz-surprise": (lambda p: ["viz", "surprise", "--run", "m", "--text", TEXT, "--html", p],
                     False),
    "viz-cells": (lambda p: ["viz", "cells", "--run", "m", "--text", TEXT, "--html", p], False),
    "viz-gates": (lambda p: ["viz", "gates", "--run", "m", "--text", TEXT, "--plot", p], False),
    "runs-show": (lambda p: ["runs", "show", "m", "--plot", p], False),
}  # fmt: skip
HAVE = {"export-onnx": "onnxruntime", "runs-show": "matplotlib"}


def snapshot(path: Path) -> dict[str, object]:
    """Everything at `path` (links not followed): each entry's type and a file's bytes."""
    out: dict[str, object] = {}
    for at in [path, *(path.rglob("*") if path.is_dir() and not path.is_symlink() else [])]:
        st = os.lstat(at)
        kind = stat.S_IFMT(st.st_mode)
        body = at.read_bytes() if stat.S_ISREG(st.st_mode) else None
        out[str(at.relative_to(path.parent))] = (kind, body, os.readlink(at) if at.is_symlink()
                                                 else None)  # fmt: skip
    return out


def _foreign(p: Path) -> None:
    (p / "data").mkdir(parents=True)
    (p / "config.json").write_text('{"architectures": ["BertModel"]}')
    (p / "model.safetensors").write_text("x")
    (p / "data" / "train.csv").write_text("precious")
    (p / "tokenizer.json").write_text("tok")


def _link(p: Path) -> None:
    (p.parent / "target.txt").write_text("precious")
    p.symlink_to(p.parent / "target.txt")


def _device(p: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    os.mknod(p, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # what /dev/null is


THERE: dict[str, Callable[[Path], None]] = {
    "file": lambda p: p.write_text("precious"),
    "foreign-folder": _foreign,
    "empty-folder": lambda p: p.mkdir(),
    "export": lambda p: (p.mkdir(), (p / "config.json").write_text('{"format": 1, "charrnn": "0"}'),
                         (p / "model.safetensors").write_text("old")),
    "symlink": _link,
    "dangling-symlink": lambda p: p.symlink_to(p.parent / "nowhere"),
    "fifo": lambda p: os.mkfifo(p),
    "device": _device,
}  # fmt: skip
REPLACEABLE = {"file", "empty-folder", "export"}  # what --force may replace
STREAMS = {"fifo", "device"}  # written into, never replaced


class Drain:
    """Read a FIFO in a thread while charrnn writes into it."""

    def __init__(self, fifo: Path) -> None:
        self.fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self.data, self.done = bytearray(), threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                chunk = None
            if chunk:
                self.data += chunk
            elif self.done.is_set():
                return
            else:
                time.sleep(0.002)

    def close(self) -> bytes:
        self.done.set()
        self.thread.join(10)
        assert not self.thread.is_alive(), "the FIFO's reader did not stop"
        # the thread may have seen an empty pipe just before the writer wrote and then `done`:
        # take whatever is still in the pipe before closing it
        while True:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.data += chunk
        os.close(self.fd)
        return bytes(self.data)


def _ours(writer: str, out: Path, data: bytes | None = None) -> bool:
    """Whether `out` (or the bytes streamed) is what `writer` writes."""
    if WRITERS[writer][1]:
        return json.loads((out / "config.json").read_text())["format"] == 1
    body = data if data is not None else out.read_bytes()
    if writer == "runs-show":
        return body.startswith(b"\x89PNG")
    if writer == "export-onnx":
        return b"charrnn" in body
    return body.lstrip().lower().startswith((b"<!doctype", b"<svg", b"<?xml"))


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
@pytest.mark.parametrize("there", list(THERE))
@pytest.mark.parametrize("writer", list(WRITERS))
def test_every_writer_keeps_what_is_not_its_own(cli, run, tmp_path, writer, there, force):
    if writer in HAVE and importlib.util.find_spec(HAVE[writer]) is None:
        pytest.skip(f"{writer} needs {HAVE[writer]}")
    argv, folder = WRITERS[writer]
    out = tmp_path / "out"
    THERE[there](out)
    before = snapshot(out)
    drain = Drain(out) if there == "fifo" else None
    r = cli(*argv(str(out)), *(["--force"] if force else []))
    streamed = drain.close() if drain else None
    if there in STREAMS and not folder:  # a stream: written into, with or without --force
        assert r.code == 0, r.err
        assert snapshot(out) == before and (streamed is None or _ours(writer, out, streamed))
    elif force and there in REPLACEABLE:  # only charrnn's own, and only with --force
        assert r.code == 0, r.err
        assert _ours(writer, out)
    else:
        assert r.code == 2 and one_line(r.err), (r.code, r.err)
        assert "internal error" not in r.err.lower()
        assert snapshot(out) == before
        if there == "symlink":
            assert (tmp_path / "target.txt").read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")] == []


@pytest.fixture(params=["renameat2", "fallback"])
def rename_kind(request, monkeypatch):
    """Both ways the move checks the path: renameat2, and a link or a reservation folder."""
    if request.param == "fallback":
        monkeypatch.setattr(renames, "_RENAMEAT2", None)
    return request.param


@pytest.mark.parametrize("fmt", ["folder", "html"])
def test_a_folder_that_appears_during_an_export_is_refused_and_kept(
    cli, run, tmp_path, monkeypatch, rename_kind, fmt
):
    out = tmp_path / "out"
    real = outputs.place

    def meanwhile(tmp, target):
        _foreign(out)  # someone's folder appears between the check and the move
        return real(tmp, target)

    monkeypatch.setattr(outputs, "place", meanwhile)
    r = cli("export", "--run", "m", "--format", fmt, "--output", str(out))
    assert r.code == 2 and "changed while charrnn was writing" in one_line(r.err), r.err
    assert (out / "data" / "train.csv").read_text() == "precious"
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "data", "model.safetensors", "tokenizer.json"]  # fmt: skip
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")] == []


@pytest.mark.parametrize("fmt", ["folder", "onnx"])
def test_force_refuses_an_export_that_became_the_users_during_the_export(
    cli, run, tmp_path, monkeypatch, rename_kind, fmt
):
    out = tmp_path / "out"
    assert cli("export", "--run", "m", "--output", str(out)).code == 0
    real = outputs.place

    def meanwhile(tmp, target):
        (out / "notes.txt").write_text("mine")  # the export became a folder of the user's
        return real(tmp, target)

    monkeypatch.setattr(outputs, "place", meanwhile)
    r = cli("export", "--run", "m", "--format", fmt, "--output", str(out), "--force")
    assert r.code == 2 and "changed while" in one_line(r.err), r.err
    assert (out / "notes.txt").read_text() == "mine" and (out / "config.json").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")] == []


def test_force_replaces_an_export_in_one_step_and_the_fallback_too(cli, run, tmp_path, rename_kind):
    out = tmp_path / "out"
    for fmt in ("folder", "html", "folder"):  # a folder over a file over a folder
        assert cli("export", "--run", "m", "--format", fmt, "--output", str(out), "--force")
        assert out.is_dir() == (fmt == "folder")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")] == []


def test_an_aside_left_by_a_killed_replace_is_put_back_then_swept(cli, run, tmp_path):
    out = tmp_path / "out"
    assert cli("export", "--run", "m", "--output", str(out)).code == 0
    pid = dead_pid()
    aside = tmp_path / f".out.{pid}.0badf00d.old"
    out.rename(aside)  # killed between "old aside" and "new in": no output
    (tmp_path / f".out.{pid}.0badf00e.tmp").mkdir()  # ...and the new one's temp folder
    r = cli("export", "--run", "m", "--output", str(out))
    assert r.code == 2 and "exists" in r.err  # the old export is back, so it is not replaced
    assert outputs.is_own_export(out)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")] == []
    foreign = tmp_path / f".out.{pid}.0badf00f.old"
    _foreign(foreign)  # an aside that is not charrnn's own is never removed
    assert cli("export", "--run", "m", "--output", str(out), "--force").code == 0
    assert (foreign / "data" / "train.csv").read_text() == "precious"


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


SLOW_EXPORT = """
import sys, time
from charrnn_cli.export import writer
from charrnn_cli.cli import main
real = writer.write_folder
def slow(*a):
    real(*a)
    time.sleep(120)
writer.write_folder = slow
sys.exit(main(["export", "--run", "m", "--output", sys.argv[1]]))
"""


def test_kill_9_during_a_folder_export_leaves_no_temp_folder_after_the_next(cli, run, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_EXPORT, str(out)], env=os.environ.copy())
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".out.*.tmp/README.md")) and time.monotonic() < deadline:
            assert proc.poll() is None, "the export ended before it could be killed"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(list(tmp_path.glob(".out.*.tmp"))) == 1 and not out.exists()
    assert cli("export", "--run", "m", "--output", str(out)).code == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")] == []
    assert outputs.is_own_export(out)
