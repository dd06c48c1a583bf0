"""Reliability, round three (issue 23): each fault reproduced as a user meets it, then fixed.

One tiny run, trained once on CRLF text (so every text path meets a carriage return), is
copied per test. See docs/reliability.md, section "Round three".
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from charrnn_cli import console, store
from tests.helpers import TINY

LINES = ["the cat sat on the mat.", "a dog ran to the log.", "we see the sea and the sky."]
CRLF_TEXT = "\r\n".join(LINES * 120) + "\r\n"


def one_line(err: str) -> str:
    assert "Traceback" not in err and "internal error" not in err, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run trained once on CRLF text; tests copy its home."""
    from charrnn_cli.cli import main

    root = tmp_path_factory.mktemp("round3")
    corpus = root / "crlf.txt"
    corpus.write_bytes(CRLF_TEXT.encode())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHARRNN_HOME", str(root / "home"))
        console.reset()
        code = main(["train", "--corpus", str(corpus), "--run", "m", *TINY, "--max-steps", "30",
                     "--eval-every", "15", "--quiet"])  # fmt: skip
        console.reset()
    assert code == 0
    return root


@pytest.fixture
def home(template: Path, charrnn_home: Path, tmp_path: Path) -> Path:
    """This test's CHARRNN_HOME: a copy of the template's (run `m`, its corpus cache)."""
    shutil.copytree(template / "home", charrnn_home)
    shutil.copy(template / "crlf.txt", tmp_path / "crlf.txt")
    return charrnn_home


# 1 -------------------------------------------------------------------------------------------


def test_the_largest_random_seed_trains_and_resumes(cli, tiny_corpus, charrnn_home):
    top = str(2**63 - 1)
    r = cli("train", "--corpus", str(tiny_corpus), "--run", "s", *TINY, "--random-seed", top,
            "--max-steps", "3", "--quiet")  # fmt: skip
    assert r.code == 0, r.err
    r = cli("train", "--run", "s", "--resume", "--max-steps", "5", "--quiet")
    assert r.code == 0, r.err


def test_the_restart_draws_of_ordinary_seeds_did_not_move():
    from charrnn_cli.batches import restart_mask

    for seed, step in [(0, 1), (3, 17), (12345, 999)]:
        gen = torch.Generator().manual_seed(seed * 1_000_003 + step)  # the formula before
        assert torch.equal(restart_mask(seed, step, 64, 0.3), torch.rand(64, generator=gen) < 0.3)
    top = 2**63 - 1
    assert not torch.equal(restart_mask(top, 1, 256, 0.5), restart_mask(top - 1, 1, 256, 0.5))


# 2 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stem", ["_names", "a..b", "__init__", "-x", ".hidden", "é", "...", "a" * 300]
)
def test_the_automatic_run_name_is_always_valid(stem):
    from charrnn_cli import paths

    name = store.new_name(stem, "lstm")
    assert paths.is_name(name) and len(name) <= paths.NAME_MAX - 6, name


def test_training_on_a_file_named_underscore_names(cli, tmp_path, tiny_text, charrnn_home):
    corpus = tmp_path / "_names.txt"
    corpus.write_text(tiny_text)
    r = cli("train", "--corpus", str(corpus), *TINY, "--max-steps", "2", "--quiet")
    assert r.code == 0, r.err
    assert Path(r.out.strip()).name.startswith("names-lstm-")


# 11 ------------------------------------------------------------------------------------------


def test_a_default_name_taken_at_the_same_instant_moves_to_the_next(
    cli, tiny_corpus, charrnn_home, monkeypatch
):
    monkeypatch.setattr(store.time, "strftime", lambda fmt, *a: "20261203-1446")
    name = store.new_name("tiny", "lstm")
    with store.lock(name) as held:  # another trainer picked the same name and holds it
        assert held == name
        r = cli("train", "--corpus", str(tiny_corpus), *TINY, "--max-steps", "2", "--quiet")
    assert r.code == 0, r.err
    assert Path(r.out.strip()).name == f"{name}-2"
    assert not (charrnn_home / "runs" / name / "config.json").exists()


def test_a_name_the_user_gave_is_still_refused_when_busy(cli, tiny_corpus, charrnn_home):
    with store.lock("mine"):
        r = cli("train", "--corpus", str(tiny_corpus), "--run", "mine", *TINY, "--max-steps", "2")
    assert r.code == 5 and "being trained" in one_line(r.err)
