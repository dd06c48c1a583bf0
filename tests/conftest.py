"""Shared fixtures: every test gets its own CHARRNN_HOME, and a `cli` runner over `main()`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Start from the default dispositions of Ctrl-C and Ctrl-\\: a shell starts `pytest &`
    with both ignored, which the signal tests' trainers would inherit (and rightly keep)."""
    import signal

    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGQUIT) == signal.SIG_IGN:
        signal.signal(signal.SIGQUIT, signal.SIG_DFL)


@pytest.fixture(autouse=True)
def charrnn_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point both stores at a fresh folder; no test touches the user's real directories."""
    home = tmp_path / "home"
    monkeypatch.setenv("CHARRNN_HOME", str(home))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("CHARRNN_MIRROR", raising=False)
    monkeypatch.delenv("CHARRNN_OFFLINE", raising=False)
    monkeypatch.delenv("CHARRNN_DEBUG", raising=False)
    return home


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run `charrnn ARGS...` in-process through the real error boundary; return code, out, err."""
    from charrnn_cli import console
    from charrnn_cli.cli import main

    def invoke(*args: str) -> Result:
        console.reset()
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


@pytest.fixture
def tiny_text() -> str:
    """A small, very regular text that a 16-unit model learns in seconds."""
    lines = ["the cat sat on the mat.", "a dog ran to the log.", "we see the sea and the sky."]
    return "\n".join(lines * 120) + "\n"


@pytest.fixture
def tiny_corpus(tmp_path: Path, tiny_text: str) -> Path:
    path = tmp_path / "tiny.txt"
    path.write_text(tiny_text, encoding="utf-8")
    return path
