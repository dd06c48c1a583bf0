"""lineage.py: the vocabulary merge, the remap of ids, the shape a parent fixes, the lineage."""

from __future__ import annotations

import json

import numpy as np
import pytest

from charrnn_cli import config
from charrnn_cli.data.encode import Encoded, encode_bytes
from charrnn_cli.errors import CharrnnError, UsageError
from charrnn_cli.storage import store
from charrnn_cli.training import lineage


def _fake_run(name: str, vocab: str = "abc", parent: dict | None = None, **model) -> None:
    """A run folder with a config.json and an empty best.pt: enough for the torch-free side."""
    cfg = {"name": name, **config.to_dict(config.ModelConfig(**model), config.TrainConfig())}
    cfg.update(vocab=vocab, corpus={"name": f"{name}-text"})
    if parent is not None:
        cfg["parent"] = parent
    store.run_dir(name).mkdir(parents=True)
    store.write_config(name, cfg)
    (store.run_dir(name) / "best.pt").write_bytes(b"")


def test_the_merge_keeps_the_parents_order_then_appends_the_new_characters_sorted():
    parent = "zyx\n ab"  # not sorted: a parent's order is whatever its ids are
    merged = lineage.merge_vocab(parent, "\n !abcz")
    assert merged == "zyx\n ab" + "!c"
    assert len(set(merged)) == len(merged)
    assert lineage.merge_vocab(parent, "ab") == parent  # characters only in the parent are kept
    assert lineage.merge_vocab(parent, parent) == parent


def test_remap_moves_each_id_to_its_characters_place_in_the_new_vocabulary():
    text = "a cab, bad!"
    ids, vocab = encode_bytes(text.encode())
    data = Encoded(ids, vocab, "sha", np.bincount(ids, minlength=len(vocab)))
    merged = lineage.merge_vocab("dcba ", vocab)
    moved = lineage.remap(data, merged)
    assert moved.vocab == merged and moved.sha256 == "sha"
    assert "".join(merged[i] for i in moved.ids) == text
    assert moved.counts.tolist() == [text.count(c) for c in merged]  # each count moved too
    assert moved.ids.dtype == np.uint8
    assert lineage.remap(data, vocab) is data
    with pytest.raises(CharrnnError, match="outside the run's vocabulary: '!'"):
        lineage.remap(data, "abcd ,")


def test_parse_reads_the_checkpoint_and_resolves_the_run():
    _fake_run("shakespeare-1")
    assert lineage.parse("shakespeare-1") == ("shakespeare-1", "best")
    assert lineage.parse("shakes:last") == ("shakespeare-1", "last")  # a unique prefix
    with pytest.raises(UsageError, match="best or last, not 'worst'"):
        lineage.parse("shakespeare-1:worst")
    with pytest.raises(CharrnnError, match="no run named"):
        lineage.parse("nobody")
    with pytest.raises(CharrnnError, match="no last.pt"):
        lineage.plan("shakespeare-1:last")


@pytest.mark.parametrize(
    "key, value, said",
    [
        ("cell", "gru", "--cell gru differs from the parent run 'p' (--cell lstm)"),
        ("layers", 3, "--layers 3 differs from the parent run 'p' (--layers 2)"),
        ("hidden_size", 64, "--hidden-size 64 differs from the parent run 'p' (--hidden-size 16)"),
        ("embed_size", 8, "--embed-size 8 differs from the parent run 'p' (--embed-size 16)"),
        ("tie_weights", False, "--no-tie-weights differs from the parent run 'p' (--tie-weights)"),
        ("start_state", "zero", "--start-state zero differs from the parent run 'p' (--start-st"),
    ],
)
def test_a_shape_option_that_differs_from_the_parents_is_refused_by_name(key, value, said):
    _fake_run("p", hidden_size=16, embed_size=16, tie_weights=True)
    with pytest.raises(UsageError) as err:
        lineage.shaped(lineage.plan("p"), {key: value})
    assert said in str(err.value)


def test_the_shape_is_the_parents_and_the_rest_the_new_runs():
    _fake_run("p", hidden_size=16, embed_size=16, tie_weights=True, dropout=0.3)
    given = lineage.shaped(lineage.plan("p"), {"hidden_size": 16, "dropout": None, "lr": 0.5})
    assert given["hidden_size"] == 16 and given["embed_size"] == 16 and given["tie_weights"]
    assert given["dropout"] is None and given["lr"] == 0.5  # not the parent's: the new run's
    # the parent's shape wins over a preset's: the cpu preset's 256 units are not applied
    model, _ = config.build(given, "cpu")
    assert model.hidden_size == 16 and model.dropout == config.PRESETS["cpu"]["dropout"]


def test_a_parent_from_before_start_states_keeps_zeros_and_refuses_a_learned_one():
    """A run trained before the learned start state stored no start_state: it began from zeros
    (config.from_dict's default), and so does its fine-tuned child, whatever the new default."""
    _fake_run("old")
    stored = store.read_config("old")
    del stored["model"]["start_state"], stored["train"]["restart_prob"]
    store.write_config("old", stored)
    given = lineage.shaped(lineage.plan("old"), {})
    assert given["start_state"] == "zero" and config.build(given)[0].start_state == "zero"
    with pytest.raises(UsageError, match=r"--start-state learned differs .*\(--start-state zero\)"):
        lineage.shaped(lineage.plan("old"), {"start_state": "learned"})


def test_the_record_names_the_parent_and_the_added_characters():
    _fake_run("p", vocab="ba")
    rec = lineage.record(lineage.plan("p"), "ba!c")
    assert (rec.run, rec.checkpoint, rec.added) == ("p", "best", "!c")
    assert rec.corpus == {"name": "p-text"} and rec.step is None and rec.sha256 is None
    assert lineage.describe(rec) == "fine-tuning p (best.pt): 2 characters added: '!c'"
    rec.added = ""
    assert "no characters added" in lineage.describe(rec)


def test_the_chain_walks_parents_and_stops_at_a_removed_one():
    _fake_run("a")
    _fake_run("b", parent={"run": "a", "checkpoint": "best", "step": 10, "added": "x"})
    _fake_run("c", parent={"run": "b", "checkpoint": "last", "step": 20, "added": ""})
    _fake_run("d", parent={"run": "gone", "checkpoint": "best", "step": 5, "added": ""})
    assert [(p["run"], p["exists"]) for p in lineage.chain("c")] == [("b", True), ("a", True)]
    assert lineage.chain("a") == [] and lineage.parent_of("a") is None
    assert [(p["run"], p["exists"]) for p in lineage.chain("d")] == [("gone", False)]


def test_a_cycle_in_hand_edited_configs_ends_the_walk():
    _fake_run("x", parent={"run": "y"})
    _fake_run("y", parent={"run": "x"})
    assert [p["run"] for p in lineage.chain("x")] == ["y", "x"]
    assert lineage.chain("x")[-1]["exists"] is False


@pytest.mark.parametrize(
    "parent, said",
    [
        ("p", "parent is not a JSON object"),
        ({"checkpoint": "best"}, "parent.run is missing, not a string"),
        ({"run": 7}, "parent.run is 7, not a string"),
        ({"run": "a", "added": 3}, "parent.added is 3, not a string"),
        ({"run": "a", "step": "ten"}, 'parent.step is "ten", not a whole number'),
        ({"run": "a", "corpus": "text"}, "parent.corpus is not a JSON object"),
    ],
)
def test_a_damaged_parent_record_lists_the_run_with_a_warning(cli, charrnn_home, parent, said):
    _fake_run("a")
    _fake_run("b", parent=parent)
    assert lineage.parent_of("b") is None and lineage.chain("b") == []
    r = cli("runs", "--json")
    assert r.code == 0 and "Traceback" not in r.err
    rows = {row["name"]: row for row in json.loads(r.out)}
    assert rows["b"]["parent"] is None and rows["b"]["hidden_size"] == 128
    assert f"b: {store.run_dir('b') / store.CONFIG}: {said}" in r.err
    r = cli("runs", "show", "b")  # a command on the run itself: one line naming the field
    assert r.code == 4 and said in r.err and len(r.err.strip().splitlines()) == 1


def test_a_child_of_a_damaged_parent_shows_its_lineage_up_to_it(cli, charrnn_home):
    _fake_run("a", parent={"run": 7})
    _fake_run("b", parent={"run": "a", "checkpoint": "best", "step": 3, "added": "x"})
    r = cli("runs", "show", "b")
    assert r.code == 0, r.err
    assert "lineage     b <- a (best.pt at step 3 on None, +1 characters)" in r.out
