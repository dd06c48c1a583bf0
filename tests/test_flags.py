"""Flags are flags: every command's help shows a flag by its name alone, with no `<bool>` after
it (Typer 0.29 added one; pyproject.toml bounds Typer below it), and no `--no-x` twin for a flag
that is off by default (`--force`, not `--force/--no-force`); a flag that is on by default is
declared by its negation alone (`--no-echo-seed`)."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from charrnn_cli.cli import app


def commands() -> list[tuple[list[str], object]]:
    """Every command and group of the app with the words that reach it, the root first."""
    root = typer.main.get_command(app)
    found: list[tuple[list[str], object]] = []
    todo: list[tuple[list[str], object]] = [([], root)]
    while todo:
        words, cmd = todo.pop()
        found.append((words, cmd))
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            todo.append(([*words, name], sub))
    return found


def test_the_walk_reaches_every_command():
    names = {" ".join(w) for w, _ in commands()}
    for want in ("", "train", "sample", "export", "serve", "runs show", "viz surprise"):
        assert want in names


def test_no_help_page_shows_bool():
    runner = CliRunner()
    for words, _ in commands():
        result = runner.invoke(app, [*words, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (words, result.output)
        assert "<bool>" not in result.output, f"charrnn {' '.join(words)} --help shows <bool>"


def test_a_flag_off_by_default_has_no_negative_twin():
    twins = []
    for words, cmd in commands():
        for p in getattr(cmd, "params", []):
            if not getattr(p, "is_flag", False) or not getattr(p, "is_bool_flag", True):
                continue
            if p.default is False and p.secondary_opts:
                twins.append(f"charrnn {' '.join(words)}: {'/'.join(p.opts + p.secondary_opts)}")
            if p.default is True and p.opts:
                twins.append(f"charrnn {' '.join(words)}: {p.opts} for a flag on by default")
    assert not twins, "flags declared with a twin:\n" + "\n".join(twins)


def test_a_negated_flag_turns_its_option_off():
    """`--no-echo-seed` (the one name of a flag on by default) still sets it False."""
    cmd = dict((" ".join(w), c) for w, c in commands())["sample"]
    echo = next(p for p in cmd.params if p.name == "echo_seed")
    assert echo.secondary_opts == ["--no-echo-seed"] and echo.default is True
