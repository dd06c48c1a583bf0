"""Progress of long work on stderr: nothing for quick work, then the share done, the rate and
the time left, and a closing line; stdout keeps only the data."""

from __future__ import annotations

import json

import pytest

from charrnn_cli import progress
from tests.helpers import TINY


def test_quick_work_shows_nothing(capsys):
    with progress.Reporter("encoding x") as report:
        report(5, 10)
    assert capsys.readouterr().err == ""


def test_long_work_shows_share_rate_and_time_left_then_a_closing_line(capsys, monkeypatch):
    monkeypatch.setattr(progress, "DELAY_S", 0.0)
    with progress.Reporter("encoding x") as report:
        report(250_000_000, 1_000_000_000)
    err = capsys.readouterr().err
    assert "encoding x: 25% of 1,000 MB," in err and "MB/s" in err and "s left" in err
    assert "encoding x: done in" in err


def test_a_failure_shows_no_closing_line(capsys, monkeypatch):
    monkeypatch.setattr(progress, "DELAY_S", 0.0)
    with pytest.raises(ValueError), progress.Reporter("encoding x") as report:
        report(1, 2)
        raise ValueError  # the reporter lets it through: it is not swallowed
    err = capsys.readouterr().err
    assert "encoding x: 50%" in err and "done in" not in err


def test_train_reports_the_encoding_and_eval_the_scoring(cli, tiny_corpus, monkeypatch):
    monkeypatch.setattr(progress, "DELAY_S", 0.0)
    monkeypatch.setattr(progress, "EVERY_S", 0.0)
    r = cli("train", "--corpus", str(tiny_corpus), "--run", "p", *TINY, "--max-steps", "5")
    assert r.code == 0 and "encoding the corpus: 100% of 0 MB" in r.err, r.err
    q = cli("train", "--corpus", str(tiny_corpus), "--run", "q", *TINY, "--max-steps", "5")
    assert "encoding the corpus" not in q.err  # cached: nothing to report
    e = cli("eval", "--run", "p", "--json")
    assert "scoring the held-out text:" in e.err and "k chars/s" in e.err
    assert json.loads(e.out)["chars"] > 0  # stdout: the data alone


def test_a_second_piece_of_work_gets_its_own_clock(capsys, monkeypatch):
    """Work reported from 0 again (ids moved after a cached encoding was checked) has its own
    rate and time left, not one diluted by the time before it began."""
    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    r = progress.Reporter("encoding the corpus")
    clock[0] += 30.0  # half a minute of other work
    r(0, 1000 * 10**6)
    clock[0] += 2.0
    r(500 * 10**6, 1000 * 10**6)
    assert r.rate() == pytest.approx(250.0) and "2 s left" in r.text()
