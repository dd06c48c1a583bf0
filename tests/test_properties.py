"""Property tests (hypothesis): any command line, and any content in the files charrnn reads
back, ends in a documented exit code and at most an `error:` line, never an internal error.

Examples find the faults someone thought of; these find the next ones. The command lines are
drawn from the app's own options (so a new option is tried the day it lands), with values of
every kind: numbers out of range, NaN, huge, empty, paths, bytes that are not UTF-8.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch
import typer.main
from hypothesis import given, settings
from hypothesis import strategies as st

from charrnn_cli import corpora
from charrnn_cli.cli import app
from tests.helpers import fixed_examples, one_line

# 30 examples each: each runs two to four whole commands; a fixed draw (derandomize) that
# still reaches every kind of value the strategies make. The command lines get 60: one
# command each, most of them refused while parsing.
SETTINGS = fixed_examples(30)
DOCUMENTED = {0, 1, 2, 3, 4, 5}
# options left out: --nproc starts processes, --resume could train on, --yes removes the run,
# --beam-width and --install-completion do slow or outside work; each is tested by examples
LEFT_OUT = {"--nproc", "--resume", "--yes", "--beam-width", "--install-completion"}
# appended last (the last occurrence wins), so a drawn value cannot make a command run long
# serve: an address no machine has, so the command parses everything and stops at the bind
BOUNDS = {"sample": ["--len", "5", "--num", "1"], "train": ["--max-steps", "1"],
          "serve": ["--host", "256.0.0.1"]}  # fmt: skip

VALUES = st.one_of(
    st.sampled_from(
        ["", "-", "0", "-1", "1", "2", "nan", "inf", "-inf", "1e999", "9" * 30, "m", "latest",
         "..", "/", "a/b", ".hidden", "lstm", "cpu", "best", "last", "auto", "cuda:7", "x" * 200]
    ),
    st.integers(-(10**20), 10**20).map(str),
    st.floats().map(repr),
    st.binary(max_size=12).map(os.fsdecode),  # argv bytes that are not UTF-8
    st.text(max_size=12),
)  # fmt: skip


def _commands() -> dict[tuple[str, ...], list]:
    """Each command path and its parameters, from the Typer app itself."""
    found: dict[tuple[str, ...], list] = {}

    def walk(cmd, path: tuple[str, ...]) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, (*path, name))
        if path:
            found[path] = [p for p in cmd.params if not set(p.opts) & LEFT_OUT]

    walk(typer.main.get_command(app), ())
    return found


COMMANDS = _commands()


@st.composite
def command_lines(draw) -> list[str]:
    path = draw(st.sampled_from(sorted(COMMANDS)))
    args = list(path)
    for param in draw(st.lists(st.sampled_from(COMMANDS[path] or [None]), max_size=4)):
        if param is None:
            continue
        if param.param_type_name == "argument":
            args.append(draw(VALUES))
        elif param.is_flag:
            args.append(param.opts[0])
        else:
            args += [param.opts[0], draw(VALUES)]
    return args + BOUNDS.get(path[0], [])


@pytest.fixture
def sandbox(run, tmp_path, monkeypatch):
    """A store with one run `m`, offline, an empty stdin, a scratch working folder."""
    monkeypatch.setenv("CHARRNN_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    return run


@pytest.fixture
def config_text(sandbox) -> str:
    """The run's config.json as training wrote it (read once, before any example)."""
    return (sandbox / "config.json").read_text()


def _no_internal_error(r) -> None:
    assert r.code in DOCUMENTED, (r.code, r.err)
    assert "internal error" not in r.err and "Traceback" not in r.err, r.err


@settings(SETTINGS, max_examples=60)
@given(args=command_lines())
def test_any_command_line_is_a_documented_exit_never_an_internal_error(
    cli, sandbox, monkeypatch, args
):
    if args[0] in ("train", "fetch", "eval"):
        # a value that names a real corpus or file would make it real work, not parsing
        taken = set(corpora.REGISTRY) | {"m"}
        if any(a in taken or (a not in ("", "-") and Path(a).is_file()) for a in args[1:]):
            return
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b""), encoding="utf-8"))
    _no_internal_error(cli(*args))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)


@SETTINGS
@given(where=st.sampled_from(["", "model", "train", "corpus"]), key=st.text(max_size=14),
       value=JSON, known=st.booleans())  # fmt: skip
@pytest.mark.slow
def test_any_value_anywhere_in_config_json_is_named_or_used(
    cli, sandbox, config_text, where, key, value, known
):
    config = json.loads(config_text)  # each example starts from the run's own config
    target = config if not where else config[where]
    if known and target:
        key = sorted(target)[len(key) % len(target)]  # a field charrnn reads, most of the time
    target[key] = value
    (sandbox / "config.json").write_text(json.dumps(config))
    listed = cli("runs", "--json")
    _no_internal_error(listed)
    assert listed.code == 0
    for args in (("runs", "show", "m"), ("eval", "--run", "m", "--json")):
        r = cli(*args)
        _no_internal_error(r)
        if r.code == 1:  # the corpus record points nowhere now: the run's text is not found
            assert where == "corpus" and "trained on" in one_line(r.err), (args, r.err)
        else:
            assert r.code in (0, 4) and (r.code == 0 or "config.json" in r.err), (args, r.err)


METRIC_LINE = st.one_of(
    st.binary(max_size=40),
    st.dictionaries(
        st.sampled_from(["step", "epoch", "elapsed_s", "lr", "train_loss", "val_loss"]), JSON
    ).map(lambda d: json.dumps(d).encode()),
    JSON.map(lambda v: json.dumps(v).encode()),
)


@pytest.mark.slow
@SETTINGS
@given(lines=st.lists(METRIC_LINE, max_size=6), newline=st.booleans())
def test_any_metrics_lines_list_the_run_with_warnings(cli, sandbox, lines, newline):
    path = sandbox / "metrics.jsonl"
    path.write_bytes(b"\n".join(lines) + (b"\n" if newline else b""))
    r = cli("runs", "--json")
    _no_internal_error(r)
    (row,) = json.loads(r.out)
    assert isinstance(row["steps"], int) and not isinstance(row["steps"], bool)
    assert row["best_val_loss"] is None or isinstance(row["best_val_loss"], float | int)
    for args in (("runs",), ("runs", "show", "m"), ("runs", "show", "m", "--json")):
        r = cli(*args)
        _no_internal_error(r)
        assert r.code == 0, r.err


@SETTINGS
@given(meta=st.one_of(JSON.map(json.dumps), st.text(max_size=30)), name=st.booleans())
def test_any_corpus_metadata_is_listed_and_named(cli, sandbox, tiny_corpus, meta, name):
    if not corpora.meta_path("mine").exists():
        assert cli("fetch", "--from", str(tiny_corpus), "--name", "mine").code == 0
    corpora.meta_path("mine").write_text(meta)
    r = cli("fetch", "--list")
    _no_internal_error(r)
    assert r.code == 0
    r = cli("fetch", "mine") if name else cli("eval", "--run", "m", "--corpus", "mine")
    _no_internal_error(r)
    assert r.code in (0, 4) and (r.code == 0 or "mine.json" in r.err), r.err


CHECKPOINT_KEYS = ["model", "config", "vocab", "step", "epoch", "cursor", "elapsed_s", "hidden",
                   "rng", "optimizer", "unigram", "format", "best_val_loss"]  # fmt: skip


@SETTINGS
@given(key=st.sampled_from(CHECKPOINT_KEYS), value=JSON)
def test_any_value_in_a_checkpoint_field_is_refused_or_used(cli, sandbox, template, key, value):
    shutil.copy(template / "best.pt", sandbox / "best.pt")
    data = torch.load(sandbox / "best.pt", weights_only=True)
    data[key] = value
    torch.save(data, sandbox / "best.pt")
    r = cli("sample", "--run", "m", "--len", "3")
    _no_internal_error(r)
    assert r.code in (0, 4) and (r.code == 0 or "best.pt" in r.err), r.err
