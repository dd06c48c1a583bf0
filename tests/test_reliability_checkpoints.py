"""Checkpoints and sampling under faults: missing runs; empty, truncated, random and malicious
checkpoints; a future format; a config.json that is not JSON; every bad sampling request. Each
is one line on stderr with its documented exit code, and the run's folder is left exactly as it
was (same bytes, same mtimes). The last test keeps docs/reliability.md true.
"""

from __future__ import annotations

import ast
import hashlib
import io
import os
import pickle
import random
import re
import shutil
import sys
from pathlib import Path

import torch

from charrnn_cli import errors
from charrnn_cli.storage import checkpoint
from tests.helpers import one_line

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file of the folder, its sha256 and mtime in nanoseconds; not `.lock`, which each
    trainer that takes the lock stamps with its pid (it holds no data)."""
    return {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.iterdir())
        if p.name != ".lock"
    }


def refused(cli, folder: Path, code: int, words: str, *args: str) -> None:
    """`charrnn ARGS` exits with `code`, one error line holding `words`, the folder untouched."""
    before = snapshot(folder)
    r = cli(*args)
    assert r.code == code, (args, r.err)
    assert words in one_line(r.err), (args, r.err)
    assert r.out == "", args
    assert snapshot(folder) == before, args


def loaders(which: str = "best") -> list[tuple[str, ...]]:
    """The three commands that load a checkpoint of run m."""
    return [
        ("sample", "--run", "m", "--checkpoint", which, "--len", "5"),
        ("eval", "--run", "m", "--checkpoint", which),
    ] + ([("train", "--run", "m", "--resume", "--max-steps", "20")] if which == "last" else [])


def test_a_missing_run_or_checkpoint_is_one_line_exit_1(cli, run, charrnn_home):
    for args in (("sample", "--run", "ghost"), ("eval", "--run", "ghost"),
                 ("train", "--run", "ghost", "--resume"), ("runs", "show", "ghost")):  # fmt: skip
        refused(cli, run, 1, "ghost", *args)
    (run / "best.pt").unlink()
    refused(cli, run, 1, "has no best.pt yet; try --checkpoint last", "sample", "--run", "m")
    (run / "last.pt").unlink()
    refused(cli, run, 1, "no checkpoint yet", "sample", "--run", "m")
    refused(cli, run, 1, "has no checkpoint yet", "train", "--run", "m", "--resume")
    shutil.rmtree(charrnn_home / "runs")
    r = cli("sample")
    assert r.code == 1 and "no runs yet" in one_line(r.err)


def test_empty_random_and_truncated_checkpoints_are_refused_at_every_offset(cli, run):
    good = (run / "last.pt").read_bytes()
    rng = random.Random(11)
    offsets = sorted({0, 1, 300, len(good) // 2, len(good) - 1, *rng.sample(range(len(good)), 5)})
    damaged = {f"truncated at {n}": good[:n] for n in offsets}
    damaged["random bytes"] = rng.randbytes(len(good))
    damaged["text"] = b"this is not a checkpoint\n"
    for _label, data in damaged.items():
        for which in ("best", "last"):
            (run / f"{which}.pt").write_bytes(data)
            for args in loaders(which):
                refused(cli, run, 4, f"checkpoint {run / which}.pt is ", *args)
        (run / "best.pt").write_bytes(good)
        (run / "last.pt").write_bytes(good)
    r = cli("sample", "--run", "m", "--len", "5")  # whole again: works
    assert r.code == 0 and len(r.out) == 5, r.err


class Evil:
    """Unpickling this runs a shell command (it would create the marker file)."""

    marker = ""

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_that_would_run_code_is_refused_and_never_runs_it(cli, run, tmp_path):
    marker = tmp_path / "PWNED"
    Evil.marker = str(marker)
    raw = pickle.dumps({"model": Evil(), "config": {}, "vocab": "ab"})
    buf = io.BytesIO()
    torch.save({"model": {"embed.weight": Evil()}, "config": {}, "vocab": "ab"}, buf)
    for label, data in (("raw pickle", raw), ("torch zip", buf.getvalue())):
        for which in ("best", "last"):
            (run / f"{which}.pt").write_bytes(data)
            for args in loaders(which):
                refused(cli, run, 4, "is refused", *args)
        assert not marker.exists(), f"loading a {label} ran its code"
    # the same file outside charrnn really does run code: the marker proves the test can see it
    pickle.loads(raw)
    assert marker.exists()


def test_a_checkpoint_or_config_from_a_future_format_is_refused(cli, run):
    good = (run / "last.pt").read_bytes()
    data = checkpoint.load(run / "last.pt")
    data["format"] = checkpoint.FORMAT + 1
    torch.save(data, run / "best.pt")
    torch.save(data, run / "last.pt")
    for which in ("best", "last"):
        for args in loaders(which):
            refused(cli, run, 4, f"format {checkpoint.FORMAT + 1}, newer than this", *args)
    (run / "best.pt").write_bytes(good)
    (run / "last.pt").write_bytes(good)
    cfg = (run / "config.json").read_text()
    (run / "config.json").write_text(cfg.replace('"format": 1', '"format": 99', 1))
    for args in (("eval", "--run", "m"), ("train", "--run", "m", "--resume")):
        refused(cli, run, 4, "written by a newer charrnn (format 99", *args)


def test_a_config_json_that_is_not_json(cli, run):
    (run / "config.json").write_text('{"format": 1, "model": {"cell": "lst')
    for args in (("eval", "--run", "m"), ("train", "--run", "m", "--resume")):
        refused(cli, run, 4, "config.json is not valid JSON", *args)
    before = snapshot(run)
    r = cli("sample", "--run", "m", "--len", "5")  # the checkpoint alone is enough to sample
    assert r.code == 0 and len(r.out) == 5 and snapshot(run) == before


BAD_SAMPLING = [
    (["--len", "-1"], "--len"),
    (["--len", "0"], "add --stream"),
    (["--temperature", "-1"], "--temperature"),
    (["--temperature", "nan"], "--temperature"),
    (["--top-p", "0"], "--top-p"),
    (["--top-p", "-0.5"], "--top-p"),
    (["--top-p", "1.5"], "--top-p"),
    (["--top-k", "0"], "--top-k"),
    (["--top-k", "-3"], "--top-k"),
    (["--num", "0"], "--num"),
    (["--beam-width", "0"], "--beam-width"),
    (["--beam-width", "4", "--len", "0", "--stream"], "--beam-width needs a finite --len"),
    (["--beam-width", "4", "--temperature", "0.8"], "--temperature would be ignored"),
    (["--beam-width", "4", "--random-seed", "1"], "--random-seed would be ignored"),
    (["--seed", "Ωmega ✓"], "'Ω', '✓'"),
    (["--checkpoint", "middle"], "--checkpoint"),
    (["--unknown", "maybe"], "--unknown"),
    (["--run", "m..x"], "not allowed"),  # "../m" and "/etc" are paths: tests/test_export_folder.py
]


def test_every_bad_sampling_request_is_one_line_exit_2_and_changes_nothing(cli, run):
    for args, words in BAD_SAMPLING:
        refused(cli, run, 2, words, "sample", "--run", "m", "--len", "5", *args)


def test_an_empty_stdin_seed_is_one_line_exit_2(cli, run, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    refused(cli, run, 2, "--seed - read nothing from stdin", "sample", "--run", "m", "--seed", "-")


# ---------------------------------------------------------------- the table in docs/reliability.md


def test_the_reliability_table_is_true():
    """docs/reliability.md: 40+ rows, every exit code of errors.py documented, the summary's
    counts those of the sections' rows, and every test it cites exists (so the table cannot
    claim a proof that was renamed or removed)."""
    text = DOC.read_text(encoding="utf-8")
    assert sum(line.startswith("|") for line in text.splitlines()) >= 42
    codes = {v for k, v in vars(errors).items() if k.startswith("EXIT_")}
    assert codes == {0, 1, 2, 3, 4, 5, 130, 143}
    for code in codes:
        assert re.search(rf"^\| `{code}` \|", text, re.M), f"exit code {code} not documented"
    # each section's rows share a prefix (D1, D2... T1...): the summary counts them in order
    prefixes = list(dict.fromkeys(re.findall(r"^\| ([A-Z])\d+ \|", text, re.M)))
    assert prefixes[:3] == ["D", "T", "C"] and len(prefixes) >= 9
    rows = {k: len(re.findall(rf"^\| {k}\d+ \|", text, re.M)) for k in prefixes}
    for k, n in rows.items():  # numbered 1..n, none skipped or repeated
        numbers = [int(i) for i in re.findall(rf"^\| {k}(\d+) \|", text, re.M)]
        assert numbers == list(range(1, n + 1)), f"rows {k} are numbered {numbers}"
    summary = re.findall(r"^\| [a-z][^|]* \| (\d+) \| (\d+) \| 0 \|$", text, re.M)
    assert [int(n) for n, _ in summary] == list(rows.values()), "the summary's counts are stale"
    assert all(n == survived for n, survived in summary)
    total = re.search(r"^\| \*\*all\*\* \| \*\*(\d+)\*\* \| \*\*(\d+)\*\* \|", text, re.M)
    assert total and int(total[1]) == int(total[2]) == sum(rows.values()), "the total is stale"
    cited = set(re.findall(r"tests/(test_\w+\.py)::(test_\w+)", text))
    assert len(cited) >= 40
    defined: dict[str, set[str]] = {}
    for file, name in sorted(cited):
        if file not in defined:
            tree = ast.parse((ROOT / "tests" / file).read_text(encoding="utf-8"))
            defined[file] = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert name in defined[file], f"docs/reliability.md cites a missing test {file}::{name}"
