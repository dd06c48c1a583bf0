"""Reliability classes (issue 23): each test walks every place of one kind, found from the code
itself (the Typer app's options, the config dataclasses, the folders charrnn writes in, the
lock files it takes), so the next option, field, text entry or writer is tried the day it lands.

1. every numeric option, past its bounds and at its type's limit, and at its bounds;
2. every name charrnn makes itself obeys the name rule;
3. every temp file charrnn writes is swept once its writer is dead, wherever it is;
4. every way text enters (argument, stdin, file, corpus name) meets one decoder and one error;
5. every field of every file read back is checked for type, range and consistency in one place;
6. `fetch --gc` and every writer agree through the one lock.

See docs/reliability.md, section "Classes".
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import typer.main

from charrnn_cli import config, console, corpora
from charrnn_cli.cli import app
from charrnn_cli.storage import paths, readback, store
from tests.helpers import TINY

LINES = ["the cat sat on the mat.", "a dog ran to the log.", "we see the sea and the sky."]
TEXT = "\n".join(LINES * 60) + "\n"
DOCUMENTED = {0, 1, 2, 3, 4, 5}


def one_line(err: str) -> str:
    assert "Traceback" not in err and "internal error" not in err, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def _options() -> dict[tuple[str, ...], list[Any]]:
    """Every command path and its options, from the Typer app itself."""
    found: dict[tuple[str, ...], list[Any]] = {}

    def walk(cmd: Any, path: tuple[str, ...]) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, (*path, name))
        if path:
            found[path] = [p for p in cmd.params if p.param_type_name == "option"]

    walk(typer.main.get_command(app), ())
    return found


def _kind(p: Any) -> type | None:
    """int or float for a numeric option (Typer 0.29 describes its type, earlier ones name a
    click range), else None."""
    desc = getattr(p, "type_descriptor", None)
    if desc is not None:
        return desc.annotation if desc.annotation in (int, float) else None
    name = getattr(p.type, "name", "")
    return {"integer": int, "int range": int, "float": float, "float range": float}.get(name)


def _flag(p: Any) -> str:
    """The option's first name (a flag on by default has only its negation, `--no-echo-seed`)."""
    return (p.opts or p.secondary_opts)[0]


def _bounds(p: Any) -> tuple[Any, Any]:
    """An option's bounds: those of an open range (`--val-fraction`, whose ends are refused
    too: `commands.options.open_range`), else Typer's min and max, on the option (Typer 0.29)
    or on its range type."""
    if bounds := getattr(p.callback, "bounds", None):
        return bounds
    if hasattr(p, "min"):
        return p.min, p.max
    return getattr(p.type, "min", None), getattr(p.type, "max", None)


OPTIONS = _options()
NUMERIC = [(path, p) for path, params in OPTIONS.items() for p in params if _kind(p) is not None]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with one tiny run `m` trained once, and its corpus; tests copy it."""
    from charrnn_cli.cli import main

    root = tmp_path_factory.mktemp("classes")
    corpus = root / "tiny.txt"
    corpus.write_text(TEXT)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHARRNN_HOME", str(root / "home"))
        console.reset()
        code = main(["train", "--corpus", str(corpus), "--run", "m", *TINY, "--max-steps", "4",
                     "--eval-every", "2", "--quiet"])  # fmt: skip
        console.reset()
    assert code == 0
    return root


@pytest.fixture
def home(template: Path, charrnn_home: Path, tmp_path: Path, monkeypatch) -> Path:
    shutil.copytree(template / "home", charrnn_home)
    shutil.copy(template / "tiny.txt", tmp_path / "tiny.txt")
    monkeypatch.setenv("CHARRNN_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b""), encoding="utf-8"))
    return charrnn_home


# 1. numeric options ---------------------------------------------------------------------------

# what each command needs beside the option tried, and limits that keep it short (the option
# tried comes last, so it wins over a limit of the same name)
BASE = {
    "train": ["--corpus", "tiny.txt", *TINY, "--max-steps", "2", "--quiet"],  # step 2 restarts
    "sample": ["--run", "m", "--len", "3"],
    "eval": ["--run", "m"],
    "viz": ["--run", "m", "--max-chars", "40"],
    "fetch": ["--from", "tiny.txt", "--name", "t"],
    # an address that cannot be bound: the options are parsed and checked, then serve stops
    # with one line instead of serving forever
    "serve": ["--run", "m", "--host", "256.0.0.1"],
}
# at their largest these run as long as they are told to (their type's limit is still refused)
RUN_AS_LONG_AS_TOLD = {
    ("sample", "--len"), ("sample", "--num"), ("sample", "--lines"), ("train", "--max-steps"),
    ("train", "--hidden-size"), ("train", "--embed-size"), ("train", "--layers"),
    ("train", "--nproc"),  # (starts that many processes)
}  # fmt: skip
# options that act only with another (--timeout, --retries, --max-bytes on a download)
NEED_NETWORK = {("fetch", "--timeout"), ("fetch", "--retries"), ("fetch", "--max-bytes")}


NEEDED = {("viz", "find"): ["--signal", "quote"]}  # a command's required options


def _args(path: tuple[str, ...], flag: str, value: str, n: int) -> list[str]:
    args = [*path, *BASE.get(path[0], []), *NEEDED.get(path, []), flag, value]
    return args + (["--run", f"r{n}"] if path[0] == "train" else [])


def _beyond(p: Any) -> list[str]:
    """Values past the option's bounds and at its type's limits."""
    low, high = _bounds(p)
    if _kind(p) is float:
        ends = [repr(low), repr(high)] if getattr(p.callback, "bounds", None) else []
        return ["nan", "inf", "-inf", "1e400", repr(low - 1e-6), repr(high * 1.5 + 1), *ends]
    return [str(low - 1), str(high + 1), str(2**63), str(2**64), str(-(2**63) - 1)]


def test_every_numeric_option_declares_finite_bounds_within_its_type():
    assert len(NUMERIC) >= 35  # the walk found the options
    for path, p in NUMERIC:
        where = f"{' '.join(path)} {_flag(p)}"
        low, high = _bounds(p)
        assert low is not None and high is not None, where
        if _kind(p) is int:
            assert -(2**63) <= low <= high <= config.INT_MAX, where
        else:
            assert math.isfinite(low) and math.isfinite(high), where
    for key, (low, high) in config.BOUNDS.items():  # the config's are the same, declared once
        for path, p in NUMERIC:
            if path == ("train",) and p.name == key:
                assert _bounds(p) == (low, high), key


@pytest.mark.slow
def test_every_numeric_option_past_its_bounds_is_one_line_exit_2(cli, home):
    for n, (path, p) in enumerate(NUMERIC):
        for value in _beyond(p):
            r = cli(*_args(path, _flag(p), value, 2 * n))
            line = one_line(r.err)
            assert r.code == 2 and _flag(p) in line, (path, _flag(p), value, line)
            assert r.out == "", (path, _flag(p), value)
    assert sorted(p.name for p in (home / "runs").iterdir()) == ["m"]  # nothing was written


@pytest.mark.slow
def test_every_numeric_option_at_its_bounds_is_never_an_internal_error(cli, home):
    for n, (path, p) in enumerate(NUMERIC):
        if (path[0], _flag(p)) in NEED_NETWORK:
            continue
        low, high = _bounds(p)
        values = [low] if (path[0], _flag(p)) in RUN_AS_LONG_AS_TOLD else [low, high]
        for k, value in enumerate(values):
            r = cli(*_args(path, _flag(p), str(value), 2 * n + k))
            assert r.code in DOCUMENTED, (path, _flag(p), value, r.err)
            assert "internal error" not in r.err and "Traceback" not in r.err, (path, _flag(p))


# 2. names charrnn makes -----------------------------------------------------------------------

HOSTILE = ["_names", "__init__", "a..b", "..", ".", "-x", ".hidden", "é", "...", "a b", "a/b",
           "~", "", "💥", "x" * 300, "-._", "CON", "a\nb", "\x00", "con.txt"]  # fmt: skip


def test_every_name_charrnn_makes_obeys_the_name_rule():
    from urllib.parse import quote

    makers = {
        "run (store.new_name)": lambda t: store.new_name(t, "lstm"),
        "corpus from a URL": lambda t: corpora.name_from_url(f"https://example.org/{quote(t)}.txt"),
        "corpus from a file name (fetch --from)": corpora.sanitize_name,
        "any (paths.make_name)": paths.make_name,
    }
    for label, make in makers.items():
        for text in HOSTILE:
            name = make(text)
            assert paths.is_name(name), (label, text, name)
    assert store.new_name("x" * 300, "lstm") + "-9999" == paths.make_name(
        store.new_name("x" * 300, "lstm") + "-9999"
    )  # room for the suffix a busy name gets


def test_fetch_from_files_with_hostile_names_makes_valid_cache_names(cli, tmp_path, charrnn_home):
    for n, stem in enumerate(["_names", "__init__", "a..b", "-x"]):
        path = tmp_path / f"{stem}.txt"
        path.write_text(f"text {n}\n")
        r = cli("fetch", "--from", str(path))
        assert r.code == 0, r.err
    names = [p.stem for p in (charrnn_home / "corpora").glob("*.json")]
    assert len(names) == 4 and all(paths.is_name(n) for n in names), names


# 3. temp files --------------------------------------------------------------------------------


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_every_folder_charrnn_writes_in_has_its_dead_writers_temps_swept(
    cli, home, tmp_path, monkeypatch
):
    from charrnn_cli.data import idmaps

    written: set[Path] = set()
    make_temp = paths.temp_path

    def recording(final: Path) -> Path:
        written.add(final)
        return make_temp(final)

    monkeypatch.setattr(paths, "temp_path", recording)
    monkeypatch.setattr(idmaps, "IN_MEMORY", 1)  # a fine-tune writes its moved ids too
    other = tmp_path / "other.txt"
    other.write_text(TEXT.replace("cat", "cow!"))
    steps = [
        ["fetch", "--from", str(other), "--name", "other"],
        ["train", "--corpus", "other", "--run", "t", *TINY, "--max-steps", "2", "--quiet"],
        ["train", "--init-from", "m", "--corpus", "other", "--run", "f", "--max-steps", "2",
         "--quiet"],
        ["eval", "--run", "t"],
        ["viz", "surprise", "--run", "t", "--max-chars", "40", "--html", str(tmp_path / "p.html")],
    ]  # fmt: skip
    for args in steps:
        assert cli(*args).code == 0, args
    folders = {final.parent for final in written}
    ours = {f for f in folders if paths.in_storage(f)}
    assert {f.name for f in ours} >= {"blobs", "encoded", "t", "f"}, ours
    pid = dead_pid()
    planted = [f / f".{final.name}.{pid}.0badf00d.tmp" for final in written for f in [final.parent]]
    for each in planted:
        each.write_bytes(b"half")
    assert cli("fetch", "--gc").code == 0  # sweeps charrnn's own folders
    left = [p for p in planted if p.exists()]
    assert all(not paths.in_storage(p) for p in left), left
    # a file the user named: its next write sweeps its temps (--force: the page exists)
    assert cli(*steps[-1], "--force").code == 0
    assert not [p for p in planted if p.exists()]


# 4. text entry points -------------------------------------------------------------------------

BAD = b"the cat\xff sat"  # the bad byte is byte 7
TEXT_OPTIONS = {"--text", "--seed", "--corpus", "--from"}


def _text_entries() -> list[tuple[tuple[str, ...], str]]:
    """(command, option) for every option that takes text or names where text comes from."""
    return [(path, _flag(p)) for path, ps in OPTIONS.items() for p in ps
            if _flag(p) in TEXT_OPTIONS]  # fmt: skip


def test_every_way_text_enters_meets_one_decoder_and_one_error(cli, home, tmp_path, monkeypatch):
    entries = _text_entries()
    assert len(entries) >= 10, entries  # train, fetch, eval, sample and the four viz commands
    bad = tmp_path / "bad.txt"
    bad.write_bytes(BAD)
    extra = {"train": ["--run", "b", *TINY, "--max-steps", "1"], "fetch": ["--name", "b"]}
    for path, flag in entries:
        base = [*path, *(["--run", "m"] if path[0] in ("sample", "eval", "viz") else [])]
        base += extra.get(path[0], []) + NEEDED.get(path, [])
        ways = {"stdin": "-", "a file": str(bad)}
        if flag in ("--text", "--seed"):
            ways = (
                {"an argument": os.fsdecode(BAD), "stdin": "-"}
                if flag == "--seed"
                else {"an argument": os.fsdecode(BAD)}
            )
        for way, value in ways.items():
            stdin = io.TextIOWrapper(io.BytesIO(BAD), encoding="utf-8")
            monkeypatch.setattr(sys, "stdin", stdin)
            r = cli(*base, flag, value)
            line = one_line(r.err)
            where = (path, flag, way, line)
            assert r.code == 4 and "is not UTF-8 text at byte 7" in line, where


def test_no_command_reads_text_in_pythons_text_mode():
    """Text mode translates line endings; every reader goes through text.py's decoder."""
    root = Path(__file__).parent.parent / "charrnn_cli"
    for source in [
        *root.glob("commands/*.py"),
        *root.glob("viz/*.py"),
        *root.glob("sampling/*.py"),
    ]:
        code = source.read_text()
        assert "TextIOWrapper(" not in code and 'errors="strict"' not in code, source
        assert "open(path, encoding=" not in code and "open(spec" not in code, source


# 5. fields of the files read back -------------------------------------------------------------


def _fields() -> list[tuple[str, str, dataclasses.Field]]:
    return [(label, f.name, f) for label, kind in (("model", config.ModelConfig),
            ("train", config.TrainConfig)) for f in dataclasses.fields(kind)]  # fmt: skip


def _stored(home: Path) -> dict:
    return json.loads((home / "runs" / "m" / "config.json").read_text())


def test_every_config_field_is_checked_for_range_or_choice(home):
    stored = _stored(home)
    assert readback.config_problem(stored) is None
    checked = 0
    for section, key, f in _fields():
        wrong: list[Any] = []
        if key in config.BOUNDS:
            low, high = config.BOUNDS[key]
            wrong = [low - 1, high + 1] if isinstance(low, int) else [low - 0.5, high * 2 + 1]
        elif f.type in ("Cell", "Schedule", "Optimizer", "Precision", "StartState", "Vocab"):
            wrong = ["Bytes", "", 3]
        elif f.type == "bool":
            wrong = [1, "yes"]
        elif key == "device":
            wrong = [0]
        elif key == "sample_seed":
            wrong = [0, "x" * (config.SAMPLE_SEED_MAX + 1), "\udcff"]
        assert wrong, f"{section}.{key}: no range or choice known for this field"
        for value in wrong:
            data = json.loads(json.dumps(stored))
            data[section][key] = value
            problem = readback.config_problem(data)
            assert problem is not None and (key in problem or config.flag(key) in problem), (
                section,
                key,
                value,
                problem,
            )
            checked += 1
    assert checked >= 2 * len(_fields())


def test_every_config_field_out_of_range_is_one_line_for_the_commands(cli, home):
    path = home / "runs" / "m" / "config.json"
    good = path.read_text()
    for section, key, _ in _fields():
        if key not in config.BOUNDS:
            continue
        data = json.loads(good)
        data[section][key] = config.BOUNDS[key][1] * 2 + 1
        path.write_text(json.dumps(data))
        r = cli("train", "--run", "m", "--resume", "--max-steps", "6")
        assert r.code == 4 and "config.json" in one_line(r.err), (key, r.err)
        r = cli("runs")
        assert r.code == 0 and key in r.err, (key, r.err)
    path.write_text(good)


def test_every_number_of_a_metrics_line_is_checked_for_range():
    for key in readback.METRIC_NUMBERS:
        for value in (-1, float("nan"), "x", True):
            row, why = readback.metrics_row(json.dumps({"step": 3, key: value}).encode())
            assert row == {"step": 3} and why is not None and key in why, (key, value)
    for value in (-1, 2**63, 1.5, None):
        row, why = readback.metrics_row(json.dumps({"step": value}).encode())
        assert row is None and "step" in why


def test_every_field_of_an_encoded_entry_is_checked_before_it_is_trusted(tmp_path, charrnn_home):
    from charrnn_cli.data import encode

    text = tmp_path / "t.txt"
    text.write_text("abcabd\n" * 30)
    first = encode.load(text)
    meta_path = charrnn_home / "corpora" / "encoded" / f"{first.sha256}.json"
    good = json.loads(meta_path.read_text())
    n = len(good["vocab"])
    damage = {
        "vocab": ["dcba\n", "", 5, "aabcd"], "length": [-1, "210", 209],
        "counts": [[1] * n, [-1] + good["counts"][1:], [0] + good["counts"][1:], "x"],
        "kind": ["bytes", None], "npy_sha256": ["0" * 64, 7],
    }  # fmt: skip
    assert set(damage) == set(good)  # every field of the entry is tried
    for key, values in damage.items():
        for value in values:
            meta_path.write_text(json.dumps({**good, key: value}))
            assert encode._cached(first.sha256, "chars") is None, (key, value)
    meta_path.write_text(json.dumps(good))
    assert encode._cached(first.sha256, "chars") is not None


# 6. gc and the writers' locks -----------------------------------------------------------------


def test_gc_frees_nothing_a_held_lock_guards(cli, home, tmp_path, monkeypatch):
    from charrnn_cli.corpora import collecting
    from charrnn_cli.data import idmaps
    from charrnn_cli.storage import locks

    monkeypatch.setattr(idmaps, "IN_MEMORY", 1)
    plain = tmp_path / "plain.txt"  # trained on in place: no stored text, no name
    plain.write_text(TEXT.replace("dog", "dig!"))
    r = cli("train", "--init-from", "m", "--corpus", str(plain), "--run", "f", "--max-steps", "2",
            "--quiet")  # fmt: skip
    assert r.code == 0, r.err
    shutil.rmtree(home / "runs" / "f")  # so no run refers to the text any more
    encoded = home / "corpora" / "encoded"
    old = time.time() - 2 * collecting.GRACE_S
    every = sorted(p for p in home.rglob("*") if p.is_file())
    for p in every:
        os.utime(p, (old, old))
    lock_files = sorted(p for p in every if p.suffix == ".lock" or p.name == ".lock")
    guarded = {p for p in encoded.iterdir() if p.suffix != ".lock"}
    assert len([p for p in lock_files if p.parent == encoded]) >= 2  # encoding and moved ids
    snapshot = tmp_path / "snapshot"
    shutil.copytree(home, snapshot)  # (copies keep their times)
    for lock in lock_files:  # a writer holds this lock: nothing it guards may go
        shutil.rmtree(home)
        shutil.copytree(snapshot, home)
        with locks.file_lock(lock) as held:
            assert held.held
            os.utime(lock, (old, old))  # held longer than the grace period (a long encoding)
            assert cli("fetch", "--gc").code == 0
            assert lock.exists(), lock
            if lock.parent == encoded:
                sha = lock.name.split(".", 1)[0]
                assert all(p.exists() for p in guarded if p.name.startswith(sha)), lock
    assert cli("fetch", "--gc").code == 0  # no lock held: the unreferenced entries go
    assert not [p for p in guarded if p.exists() and p.name.split(".")[0] in _unreferenced(home)]


def _unreferenced(home: Path) -> set[str]:
    from charrnn_cli.corpora import collecting

    named, for_runs = collecting.referenced()
    return (
        {p.name.split(".")[0] for p in (home / "corpora" / "encoded").iterdir()} - named - for_runs
    )
