"""The class behind faults 10 and 11: a model folder someone hands you, mutated anywhere.

Every byte of model.safetensors' header (and its length) and every field of config.json, at
any depth, is changed to a value of another kind, deleted, or mutated at random (Hypothesis),
and the folder is then used the way the commands use it, in this process: loaded as a run,
its config read as a run's, its export config and model card made, a few characters drawn.
Each use either succeeds (the change was harmless) or raises one CorruptFileError (exit 4)
whose one line names the file; never another exception (an internal error), and never more
memory than a bound plus a few times the folder's bytes (the peak resident size, reset before
each use). The CLI's own handling of such errors is tested by test_reliability_folders.py.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from charrnn_cli.errors import CorruptFileError
from charrnn_cli.export import card
from charrnn_cli.export import folder as export_folder
from charrnn_cli.export.writer import export_run
from charrnn_cli.sampling.generator import SamplingModel, generate
from charrnn_cli.sampling.request import SampleRequest
from charrnn_cli.storage import folder
from tests.helpers import fixed_examples, train_tiny

TENSORS, CONFIG = "model.safetensors", "config.json"
SLACK = 64 << 20  # bytes a use may grow the peak resident size by, besides the folder's own
SETTINGS = fixed_examples(60)
# values of every kind JSON holds, and the ones that broke charrnn before
ODD = [None, True, 0, -1, 2**63, 2**70, -(2**70), 1e308, math.nan, math.inf, "", "abc",
       "\ud800", "bytes", [], {}, [0], [[[]]], {"loss": "x"}, [1] * 100, "x" * 5000]  # fmt: skip
# and as JSON text, what json.dumps cannot write: the crafted values
RAW = ['["F32"]', "[4294967296, 4294967296]", "9" * 5000, "[" + "9" * 5000 + "]", str([1] * 100),
       "[" * 100_000 + "]" * 100_000, "1e999", "-0", '"BF16"', '"F64"', '"I64"', '"U8"',
       "[0, 18446744073709551615]", f"[{2**70}]", '"\\ud800"', '{"a": [[{}]]}']  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(ODD),
    st.integers(),
    st.floats(),
    st.text(max_size=6),
    st.lists(st.integers(-3, 3), max_size=4),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=3),
).map(lambda v: json.dumps(v))
TEXTS = st.one_of(st.sampled_from(RAW), VALUES)
MARK = "\0mark\0"


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("valid")
    train_tiny(root, "v")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHARRNN_HOME", str(root / "home"))
        out = export_run("v", "best", "folder", root / "model")
    cfg = json.loads((out / CONFIG).read_text(encoding="utf-8"))
    cfg["parent"] = {"run": "p", "checkpoint": "best", "corpus": {"name": "c"}, "step": 3}
    (out / CONFIG).write_text(json.dumps(cfg), encoding="utf-8")  # every field charrnn reads
    return out


def _peak() -> int | None:
    """This process's peak resident bytes since the last reset (Linux), or None."""
    try:
        with open("/proc/self/status") as fh:
            return next(int(x.split()[1]) << 10 for x in fh if x.startswith("VmHWM"))
    except (OSError, StopIteration):
        return None


def _reset_peak() -> int | None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the resident size now
    except OSError:
        return None
    return _peak()


def _use(where: Path) -> None:
    """What the commands do with a folder: load it as a run (sample, eval, serve, viz, train
    --init-from), read its config as a run's, export it (config and card), draw unprompted."""
    src = export_folder.gather(str(where))
    card.card(export_folder.config_of(src), "t", "", src.model.num_parameters())
    sm = SamplingModel(src.model, src.vocab, src.kind, src.ck.get("unigram"), None, src.name)
    assert "".join(p.text for p in generate(sm, SampleRequest(length=3, random_seed=0)))


def _weights(where: Path) -> None:
    """The reading of model.safetensors alone (what a header mutation can reach)."""
    folder.checkpoint_of(where)


def _holds(where: Path, use=_use) -> str | None:
    """Use the folder; the CorruptFileError's message, None when it worked. Fails on any other
    exception, a message of several lines or not naming the file, or too much memory."""
    size = sum(p.stat().st_size for p in where.iterdir())
    before = _reset_peak()
    try:
        use(where)
        said = None
    except CorruptFileError as exc:
        said = str(exc)
        assert "\n" not in said and len(said) < 600, said
        assert str(where / CONFIG) in said or str(where / TENSORS) in said, said
    peak = _peak()
    if before is not None and peak is not None:
        assert peak - before <= SLACK + 4 * size, f"grew by {(peak - before) >> 20} MB"
    return said


def _fields(data: Any, at: tuple = ()) -> list[tuple]:
    """The path to every value in a JSON document, at any depth."""
    found = [at] if at else []
    items = (
        data.items()
        if isinstance(data, dict)
        else enumerate(data)
        if isinstance(data, list)
        else ()
    )
    for key, value in items:
        found += _fields(value, (*at, key))
    return found


def _changed(doc: Any, at: tuple, text: str | None) -> str:
    """`doc` as JSON text with the value at `at` replaced by the JSON `text`, or deleted
    (None)."""
    copy = json.loads(json.dumps(doc))
    inner = copy
    for key in at[:-1]:
        inner = inner[key]
    if text is None:
        del inner[at[-1]]  # a key, or an item of a list
        return json.dumps(copy)
    inner[at[-1]] = MARK
    return json.dumps(copy).replace(json.dumps(MARK), text)


def _header(raw: bytes) -> tuple[Any, bytes]:
    """A safetensors file's header (parsed) and the data after it."""
    end = 8 + int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:end]), raw[end:]


def _file(header: str, data: bytes) -> bytes:
    body = header.encode("utf-8", "surrogatepass")
    return len(body).to_bytes(8, "little") + body + data


@pytest.fixture
def work(valid, tmp_path) -> Path:
    return Path(shutil.copytree(valid, tmp_path / "m"))


def _config_with(work: Path, valid: Path, at: tuple, text: str | None) -> None:
    doc = json.loads((valid / CONFIG).read_text(encoding="utf-8"))
    (work / CONFIG).write_bytes(_changed(doc, at, text).encode("utf-8", "surrogatepass"))


def test_the_valid_folder_is_used_and_every_field_of_its_config_is_checked(valid, work):
    assert _holds(work) is None
    fields = _fields(json.loads((valid / CONFIG).read_text(encoding="utf-8")))
    assert len(fields) > 60  # the top level, vocab, unigram, training, held_out, corpus, parent
    refused = 0
    for i, at in enumerate(fields):
        for text in (RAW[i % len(RAW)], json.dumps(ODD[i % len(ODD)]), None):
            _config_with(work, valid, at, text)
            refused += _holds(work) is not None
    assert refused > len(fields)  # most changes are refused, the harmless ones are used


def test_every_field_of_the_header_is_checked(valid, work):
    header, data = _header((valid / TENSORS).read_bytes())
    fields = _fields(header)
    assert len(fields) > 30  # each tensor's dtype, shape and offsets, the metadata
    for i, at in enumerate(fields):
        for text in (*RAW, json.dumps(ODD[i % len(ODD)]), None):
            (work / TENSORS).write_bytes(_file(_changed(header, at, text), data))
            _holds(work, _weights)


@SETTINGS
@given(data=st.data())
def test_any_change_to_a_header_field_is_used_or_one_line_exit_4(valid, work, data):
    header, rest = _header((valid / TENSORS).read_bytes())
    at = data.draw(st.sampled_from(_fields(header)))
    text = data.draw(st.one_of(TEXTS, st.none()))
    (work / TENSORS).write_bytes(_file(_changed(header, at, text), rest))
    _holds(work)


@SETTINGS
@given(data=st.data())
def test_any_change_to_config_json_is_used_or_one_line_exit_4(valid, work, data):
    doc = json.loads((valid / CONFIG).read_text(encoding="utf-8"))
    at = data.draw(st.sampled_from(_fields(doc)))
    _config_with(work, valid, at, data.draw(st.one_of(TEXTS, st.none())))
    _holds(work)


def test_every_byte_of_the_header_changed_is_used_or_one_line_exit_4(valid, work):
    raw = (valid / TENSORS).read_bytes()
    end = 8 + int.from_bytes(raw[:8], "little")  # the length, then the JSON header
    odd = b'9[{"-0 \xff\x00.e'
    refused = 0
    for i in range(end):
        changed = bytearray(raw)
        changed[i] = odd[i % len(odd)] if odd[i % len(odd)] != raw[i] else 0x7B
        (work / TENSORS).write_bytes(bytes(changed))
        refused += _holds(work, _weights) is not None
    assert refused > end // 2


@SETTINGS
@given(data=st.data())
def test_any_edit_of_the_header_is_used_or_one_line_exit_4(valid, work, data):
    raw = bytearray((valid / TENSORS).read_bytes())
    end = 8 + int.from_bytes(raw[:8], "little")
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, end - 1))
        kind = data.draw(st.sampled_from(["byte", "insert", "delete", "length"]))
        if kind == "byte":
            raw[i] = data.draw(st.integers(0, 255))
        elif kind == "insert":
            raw[i:i] = data.draw(st.sampled_from([b"[", b"9" * 30, b',"x":{}', b'"F64"', b"-1"]))
        elif kind == "delete":
            del raw[i : i + data.draw(st.integers(1, 8))]
        else:  # the length itself: any 8 bytes
            raw[:8] = data.draw(st.integers(0, 2**64 - 1)).to_bytes(8, "little")
    (work / TENSORS).write_bytes(bytes(raw))
    _holds(work, _use)
