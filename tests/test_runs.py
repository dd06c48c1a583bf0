"""`charrnn runs`: listing, show with curves, path, rm, and name resolution."""

from __future__ import annotations

import json

import pytest

from charrnn_cli.errors import CharrnnError, UsageError
from charrnn_cli.storage import store
from tests.helpers import TINY


@pytest.fixture
def two_runs(trained_run):
    """Runs alpha-1 and beta-1 (20 steps each), trained once for the session and copied."""
    for name in ("alpha-1", "beta-1"):
        trained_run(name, *TINY, "--max-steps", "20", "--eval-every", "10")


def test_runs_json_lists_each_run(cli, two_runs):
    rows = json.loads(cli("runs", "--json").out)
    assert {r["name"] for r in rows} == {"alpha-1", "beta-1"}
    for r in rows:
        assert r["cell"] == "lstm" and r["steps"] == 20 and r["best_val_loss"] > 0


def test_runs_piped_is_tab_separated(cli, two_runs):
    lines = cli("runs").out.strip().splitlines()
    assert len(lines) == 2 and all(len(line.split("\t")) == 12 for line in lines)


def test_show_draws_curves_and_path_prints_the_folder(cli, two_runs, charrnn_home):
    r = cli("runs", "show", "alpha")
    assert r.code == 0 and "held-out" in r.out and "┤" in r.out
    assert cli("runs", "path", "beta").out.strip() == str(charrnn_home / "runs" / "beta-1")


def test_plot_without_matplotlib_says_how(cli, two_runs, tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_mpl(name, *a, **k):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    r = cli("runs", "show", "alpha-1", "--plot", str(tmp_path / "x.png"))
    assert r.code == 1 and "charrnn[plot]" in r.err


def test_rm_needs_yes_when_not_interactive(cli, two_runs, charrnn_home):
    r = cli("runs", "rm", "alpha-1")
    assert r.code == 1 and "--yes" in r.err
    assert cli("runs", "rm", "alpha-1", "--yes").code == 0
    assert not (charrnn_home / "runs" / "alpha-1").exists()


def test_resolve_latest_prefix_and_errors(two_runs):
    assert store.resolve("latest") in {"alpha-1", "beta-1"}
    assert store.resolve("al") == "alpha-1"
    with pytest.raises(CharrnnError, match="no run named"):
        store.resolve("zeta")
    with pytest.raises(UsageError):
        store.resolve("../x")


def test_bad_config_json_is_a_clear_error(cli, two_runs, charrnn_home):
    (charrnn_home / "runs" / "beta-1" / "config.json").write_text("{not json")
    r = cli("runs", "--json")
    assert [row["name"] for row in json.loads(r.out)] == ["alpha-1"] and "not valid JSON" in r.err
    r = cli("eval", "--run", "beta-1")  # the held-out text is found through config.json
    assert r.code == 4 and "not valid JSON" in r.err
    r = cli("sample", "--run", "beta-1", "--len", "5")  # the checkpoint alone is enough
    assert r.code == 0 and len(r.out) == 5
