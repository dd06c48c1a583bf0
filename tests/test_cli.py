"""The CLI shell: help, version, error boundary, and torch staying out of start-up."""

from __future__ import annotations

import subprocess
import sys

from charrnn_cli import __version__


def test_help_lists_every_subcommand(cli):
    r = cli("--help")
    assert r.code == 0
    for name in ("fetch", "train", "eval", "sample", "serve", "runs", "info"):
        assert name in r.out


def test_version(cli):
    r = cli("--version")
    assert r.code == 0 and r.out.strip() == f"charrnn {__version__}"


def test_unknown_command_is_one_line_and_exit_2(cli):
    r = cli("bogus")
    assert r.code == 2
    assert r.err.strip().count("\n") == 0 and "bogus" in r.err
    assert "Traceback" not in r.err


def test_importing_the_cli_does_not_import_torch():
    code = "import sys, charrnn_cli.cli; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_help_in_a_subprocess_does_not_import_torch():
    code = (
        "import sys\nfrom charrnn_cli.cli import main\n"
        "rc = main(['--help'])\nassert 'torch' not in sys.modules\nsys.exit(rc)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "charrnn_cli", "--help"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0
    assert not any(line.rstrip().endswith("| torch") for line in r.stderr.splitlines())


def test_help_shows_the_defaults_written_in_brackets(cli, monkeypatch):
    """Typer's rich help takes "[cosine]" for a markup tag and drops it: every default a help
    text names in brackets must reach the screen."""
    monkeypatch.setenv("COLUMNS", "250")  # one line an option: no bracket split by wrapping
    shown = {
        ("train",): ["[tinyshakespeare]", "[lstm]", "[chars]", "[cosine]", "[adam]", "[auto]"],
        ("sample",): ["[latest]"],
        ("serve",): ["[latest]"],
        ("viz", "cells"): ["[the last]", "[the best for each signal]", "[latest]"],
    }
    for args, defaults in shown.items():
        r = cli(*args, "--help")
        assert r.code == 0
        for default in defaults:
            assert default in r.out, (args, default)


def test_help_shows_ranges_and_defaults_as_they_are(cli, monkeypatch):
    """--val-fraction's range is open (its help says so, never `[0.0<=x<=1.0]`, which would
    promise both ends), and --separator's default is visible, not a blank box."""
    monkeypatch.setenv("COLUMNS", "250")
    r = cli("train", "--help")
    line = next(x for x in r.out.splitlines() if "--val-fraction" in x)
    assert "inside (0, 1)" in line and "<=" not in line
    for end in ("0", "1", "nan"):
        bad = cli("train", "--val-fraction", end)
        assert bad.code == 2 and "not inside (0, 1)" in bad.err, bad.err
    r = cli("sample", "--help")
    assert "$'\\n\\n'" in next(x for x in r.out.splitlines() if "--separator" in x)


def test_debug_after_the_command_says_where_it_goes(cli):
    r = cli("runs", "--debug")
    assert r.code == 2 and "`charrnn --debug COMMAND ...`" in r.err
    assert len(r.err.strip().splitlines()) == 1
