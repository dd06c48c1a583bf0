"""The environment pointing at the wrong kind of thing (CHARRNN_HOME a file, a folder without
permission, a relative XDG_* variable), and messages that must blame the right thing (a full
stdout is not CHARRNN_HOME's fault; bytes that are not UTF-8 are shown as the bytes they are)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from charrnn_cli.storage import paths
from tests.helpers import one_line, spawn, without_root_override

EVERY_COMMAND = [
    ("fetch", "pysrc", "--max-bytes", "1000"),
    ("fetch", "--list"),
    ("fetch", "--gc"),
    ("runs",),
    ("runs", "show", "m"),
    ("train", "--max-steps", "1"),
    ("eval",),
    ("sample", "--len", "5"),
]


@pytest.mark.parametrize("through", [False, True], ids=["a-file", "through-a-file"])
def test_charrnn_home_naming_a_file_is_one_line_for_every_command(
    cli, tmp_path, monkeypatch, through
):
    afile = tmp_path / "afile"
    afile.write_text("x\n")
    monkeypatch.setenv("CHARRNN_HOME", str(afile / "sub" if through else afile))
    for args in EVERY_COMMAND:
        r = cli(*args)
        assert r.code == 2 and "CHARRNN_HOME=" in one_line(r.err), (args, r.err)
        assert "not a folder" in r.err and str(afile) in r.err
    assert afile.read_text() == "x\n"


def test_a_relative_charrnn_home_is_made_absolute(cli, tmp_path, monkeypatch, tiny_corpus):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHARRNN_HOME", "rel-home")
    r = cli("fetch", "--from", str(tiny_corpus), "--name", "t")
    assert r.code == 0 and Path(r.out.strip()).is_absolute()
    assert Path(r.out.strip()).is_relative_to(tmp_path / "rel-home")


@pytest.mark.parametrize(
    ("variable", "needs_it"),
    [("XDG_CACHE_HOME", ("fetch", "pysrc", "--max-bytes", "1000")), ("XDG_DATA_HOME", ("runs",))],
)
def test_a_relative_xdg_variable_is_one_line(cli, tmp_path, monkeypatch, variable, needs_it):
    monkeypatch.delenv("CHARRNN_HOME")
    for name in ("XDG_CACHE_HOME", "XDG_DATA_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name))  # never the user's real folders
    monkeypatch.setenv(variable, "relative/dir")
    monkeypatch.setenv("CHARRNN_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    r = cli(*needs_it)
    assert r.code == 2 and f"{variable}=relative/dir is a relative path" in one_line(r.err)
    for args in EVERY_COMMAND:
        r = cli(*args)
        assert r.code in (0, 1, 2, 3) and "internal error" not in r.err, (args, r.err)
    assert not (tmp_path / "relative").exists()


def test_absolute_xdg_folders_are_used(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("CHARRNN_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    r = cli("fetch", "pysrc", "--max-bytes", "1000")
    assert r.code == 0 and r.out.startswith(str(tmp_path / "cache" / "charrnn" / "corpora"))


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_a_charrnn_home_without_permission_is_one_line(tmp_path, tiny_corpus):
    home = tmp_path / "locked"
    home.mkdir(mode=0o555)
    env = {"CHARRNN_HOME": str(home)}
    proc = spawn("fetch", "--from", str(tiny_corpus), env=env, preexec_fn=without_root_override)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "permission denied" in one_line(err)
    assert str(home) in err and "CHARRNN_HOME" in err  # the folder is charrnn's: move it
    home.chmod(0o000)
    try:
        for args in (("runs",), ("fetch", "--list")):
            proc = spawn(*args, env=env, preexec_fn=without_root_override)
            _, err = proc.communicate(timeout=60)
            assert proc.returncode in (0, 1) and "internal error" not in err, (args, err)
            assert proc.returncode == 0 or "permission denied" in one_line(err)
    finally:
        home.chmod(0o755)


FULL = Path("/dev/full")


@pytest.mark.skipif(not FULL.exists(), reason="needs /dev/full")
@pytest.mark.parametrize(
    "args",
    [("runs", "--json"), ("fetch", "--list"), ("sample", "--run", "m", "--len", "100000"),
     ("runs", "path", "m"), ("info",)],
    ids=["runs", "fetch-list", "sample", "runs-path", "info"],
)  # fmt: skip
def test_a_full_stdout_is_named_and_charrnn_home_is_not_blamed(run, charrnn_home, args):
    with open(FULL, "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "charrnn_cli", *args],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    err = proc.stderr
    assert proc.returncode == 1, err  # not 120: the exit-time flush found stdout silenced
    line = one_line(err)
    assert "cannot write to stdout (/dev/full): no space left on the device" in line
    assert "CHARRNN_HOME" not in err


def test_the_hint_names_charrnn_home_only_for_charrnn_s_own_files(charrnn_home, tmp_path):
    full = OSError(errno.ENOSPC, "No space left on device")
    denied = OSError(errno.EACCES, "Permission denied")
    ours, theirs = charrnn_home / "runs" / "x" / "last.pt", tmp_path / "my-notes.txt"
    assert "CHARRNN_HOME" in paths.storage_hint(full, ours)
    assert "CHARRNN_HOME" in paths.storage_hint(denied, ours)
    assert paths.storage_hint(full, theirs) == "free some space"
    assert paths.storage_hint(denied, theirs) == "check its permissions"
    assert "CHARRNN_HOME" not in paths.storage_hint(full)  # no file named: stdout, a pipe...
    assert "CHARRNN_HOME" not in str(paths.write_error(theirs, full))


def test_bytes_that_are_not_utf8_are_shown_as_bytes_in_messages(cli, run):
    weird = os.fsdecode(b"caf\xe9")  # what Python makes of such bytes in argv
    for args in (("eval", "--run", weird), ("runs", "show", weird), ("fetch", weird)):
        r = cli(*args)
        assert r.code == 2 and "caf\\xe9" in one_line(r.err), (args, r.err)
        assert "udc" not in r.err


def test_a_user_s_unreadable_file_is_not_blamed_on_charrnn_home(tmp_path, run):
    secret = tmp_path / "secret.txt"
    secret.write_text("the cat\n")
    secret.chmod(0o000)
    proc = spawn("eval", "--run", "m", "--corpus", str(secret), preexec_fn=without_root_override)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "permission denied" in one_line(err), err
    assert str(secret) in err and "CHARRNN_HOME" not in err


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://a..b/x.txt", "empty part"),
        ("https://.x/x.txt", "empty part"),
        ("http://" + "a" * 64 + ".org/x.txt", "longer than 63"),
        ("http://" + "a." * 130 + "org/x.txt", "longer than 63"),
        ("http://%zz/x.txt", "not a valid host"),
    ],
    ids=["empty-label", "leading-dot", "long-label", "long-name", "unparsable"],
)
def test_a_url_no_server_could_be_asked_for_is_a_usage_error(cli, url, words):
    r = cli("fetch", url, "--retries", "0")
    assert r.code == 2 and "malformed URL" in one_line(r.err) and words in r.err, r.err
