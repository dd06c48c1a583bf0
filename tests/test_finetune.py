"""Fine-tuning (`train --init-from`): the mean rows, the parent's predictions kept, the parent
left untouched, the record and lineage, resume, refused shape changes, data-parallel starts."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from charrnn_cli import config, console
from charrnn_cli.errors import CharrnnError
from charrnn_cli.storage import checkpoint, store
from charrnn_cli.training import finetune, jobs
from charrnn_cli.training.distributed import Comm
from charrnn_cli.training.train import Trainer
from tests.helpers import DIST_OPTS, DIST_TOL, TINY, dist_env, run_cmd, torchrun, val_losses

# the tiny text's characters are lowercase letters, ' ', '.' and '\n'; this one adds others
NEW_TEXT = "The Cat sat on 42 mats; [really]!\nA dog ran to the log.\n" * 150
# plain; tied weights; one from before learned start states (zeros, no start_state stored)
PARENTS = {
    "parent": [],
    "tied": ["--embed-size", "16", "--tie-weights"],
    "old": ["--start-state", "zero", "--restart-prob", "0"],
}


@pytest.fixture(scope="module")
def parents(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two tiny parents trained once (plain, and with tied weights); tests copy them."""
    from charrnn_cli.cli import main

    root = tmp_path_factory.mktemp("parents")
    corpus = root / "tiny.txt"
    lines = ["the cat sat on the mat.", "a dog ran to the log.", "we see the sea and the sky."]
    corpus.write_text("\n".join(lines * 120) + "\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHARRNN_HOME", str(root / "home"))
        for name, extra in PARENTS.items():
            console.reset()
            args = ["train", "--corpus", str(corpus), "--run", name, *TINY, *extra,
                    "--max-steps", "150", "--lr", "0.02", "--eval-every", "50",
                    "--quiet"]  # fmt: skip
            assert main(args) == 0
    _as_before_start_states(root / "home" / "runs" / "old")
    return root / "home" / "runs"


def _as_before_start_states(run: Path) -> None:
    """Make a zero-start run look like one trained before start states existed: its
    config.json and checkpoints name neither start_state nor restart_prob."""

    def strip(cfg: dict) -> None:
        cfg["model"].pop("start_state"), cfg["train"].pop("restart_prob")

    cfg = json.loads((run / "config.json").read_text())
    strip(cfg)
    (run / "config.json").write_text(json.dumps(cfg))
    for name in ("best.pt", "last.pt"):
        ck = torch.load(run / name, weights_only=True)
        strip(ck["config"])
        torch.save(ck, run / name)


@pytest.fixture
def parent(parents: Path, charrnn_home: Path) -> Path:
    for name in PARENTS:
        shutil.copytree(parents / name, charrnn_home / "runs" / name)
    return charrnn_home / "runs" / "parent"


@pytest.fixture
def new_corpus(tmp_path: Path) -> Path:
    path = tmp_path / "new.txt"
    path.write_text(NEW_TEXT)
    return path


def _added(parent_vocab: str) -> str:
    return "".join(sorted(set(NEW_TEXT) - set(parent_vocab)))


def test_extend_appends_the_mean_row_and_leaves_every_other_parameter_alone():
    state = {
        "embed.weight": torch.randn(5, 3),
        "head.weight": torch.randn(5, 4),
        "head.bias": torch.randn(5),
        "rnn.weight_hh_l0": torch.randn(5, 4),  # as many rows as the vocabulary, by chance
        "start": torch.randn(2, 1, 1, 4),  # a learned start state (S, L, 1, H): not vocabulary
    }
    out = finetune.extend(state, 2)
    for key in finetune.VOCAB_ROWS:
        assert out[key].shape[0] == 7 and torch.equal(out[key][:5], state[key])
        for row in out[key][5:]:
            torch.testing.assert_close(row, state[key].mean(0))
    assert out["rnn.weight_hh_l0"] is state["rnn.weight_hh_l0"] and out["start"] is state["start"]


def _child(name: str, corpus: Path, **given) -> Trainer:
    """The fine-tuned run's model as it stands before its first step."""
    job = jobs.prepare(str(corpus), "child", False, None, given, Comm(), init_from=name)
    trainer = Trainer(job, Comm())
    trainer.restore()
    return trainer


@pytest.mark.parametrize("name", list(PARENTS))
def test_the_mean_rows_keep_the_parents_predictions_and_give_new_characters_little(
    parent, new_corpus, name
):
    old, vocab, _, _ = checkpoint.load_run(name, "best", "cpu")
    trainer = _child(name, new_corpus)
    child = trainer.model.eval()
    assert trainer.job.data.vocab == vocab + _added(vocab)
    V = len(vocab)
    text = "the cat sat on the log. we see the sky.\n"
    x = torch.tensor([[vocab.index(c) for c in text]])  # (1, T): the same ids in both
    with torch.no_grad():
        p = old(x)[0].softmax(-1)  # (1, T, V)
        q = child(x)[0].softmax(-1)  # (1, T, V + added)
    kept = q[..., :V] / q[..., :V].sum(-1, keepdim=True)
    torch.testing.assert_close(kept, p, rtol=1e-4, atol=1e-6)
    # each new character has at most the parent's average probability (Jensen), and far less
    # where the parent is sure of its next character
    assert (q[..., V:] <= 1 / V).all()
    assert q[..., V:].sum(-1).mean() < 0.1 * len(_added(vocab)) / V


def test_the_start_state_is_the_parents(parent, new_corpus):
    """The learned start state is copied as it is; a parent from before start states (zeros)
    gives a child that starts from zeros too, though a new run's default is a learned one."""
    old, _, _, _ = checkpoint.load_run("parent", "best", "cpu")
    child = _child("parent", new_corpus).model
    assert old.start is not None and old.start.abs().sum() > 0  # it was trained
    assert child.start is not None and torch.equal(child.start, old.start)
    trainer = _child("old", new_corpus)
    assert trainer.mcfg.start_state == "zero" and trainer.model.start is None
    assert config.ModelConfig().start_state == "learned"


def test_a_learned_start_state_is_refused_for_a_parent_that_began_from_zeros(
    cli, parent, new_corpus, charrnn_home
):
    r = cli("train", "--init-from", "old", "--corpus", str(new_corpus), "--run", "bad",
            "--start-state", "learned", "--max-steps", "3")  # fmt: skip
    assert r.code == 2 and "--start-state learned differs from the parent run 'old'" in r.err
    assert "(--start-state zero)" in r.err and len(r.err.strip().splitlines()) == 1
    assert not (charrnn_home / "runs" / "bad").exists()


def test_a_fine_tuned_run_leaves_its_parent_untouched_and_records_it(
    cli, parent, new_corpus, charrnn_home
):
    def snapshot() -> dict:
        files = [p for p in parent.iterdir() if p.name != ".lock"]
        return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}

    before = snapshot()
    r = cli("train", "--init-from", "parent", "--corpus", str(new_corpus), "--run", "child",
            "--max-steps", "30", "--eval-every", "15")  # fmt: skip
    assert r.code == 0, r.err
    assert snapshot() == before
    pcfg, ccfg = store.read_config("parent"), store.read_config("child")
    added = _added(pcfg["vocab"])
    assert ccfg["vocab"] == pcfg["vocab"] + added
    assert f"{len(added)} characters added" in r.err
    rec = ccfg["parent"]
    best = checkpoint.load(parent / "best.pt")
    assert (rec["run"], rec["checkpoint"], rec["added"]) == ("parent", "best", added)
    assert rec["step"] == best["step"] and rec["corpus"] == pcfg["corpus"]
    assert rec["sha256"] == hashlib.sha256((parent / "best.pt").read_bytes()).hexdigest()
    assert ccfg["model"]["hidden_size"] == pcfg["model"]["hidden_size"]
    rows = {row["name"]: row for row in json.loads(cli("runs", "--json").out)}
    assert rows["child"]["parent"]["run"] == "parent" and rows["parent"]["parent"] is None
    assert cli("runs").out.splitlines()[0].split("\t")[-1] in ("parent", "-")
    r = cli("sample", "--run", "child", "--seed", "The Cat [42]", "--len", "40")
    assert r.code == 0 and r.out.startswith("The Cat [42]"), r.err
    for text in ([], ["--corpus", pcfg["corpus"]["path"]]):  # its own held-out text; the parent's
        r = cli("eval", "--run", "child", "--json", *text)
        assert r.code == 0, r.err
        assert json.loads(r.out)["skipped"] == 0
    r = cli("viz", "surprise", "--run", "child", "--json")  # its held-out text, new characters
    assert r.code == 0 and r.out.count("\n") > 10, r.err


def test_runs_show_draws_the_lineage(cli, parent, new_corpus, tmp_path):
    args = ["--max-steps", "3", "--quiet"]
    assert cli("train", "--init-from", "parent:last", "--corpus", str(new_corpus),
               "--run", "child", *args).code == 0  # fmt: skip
    third = tmp_path / "third.txt"
    third.write_text(NEW_TEXT.upper())
    assert cli("train", "--init-from", "child", "--corpus", str(third), "--run", "grandchild",
               *args).code == 0  # fmt: skip
    out = cli("runs", "show", "grandchild").out
    line = next(line for line in out.splitlines() if line.startswith("lineage"))
    assert "grandchild <- child (best.pt at step 3" in line and "<- parent (last.pt at" in line
    lineage = json.loads(cli("runs", "show", "grandchild", "--json").out)["lineage"]
    assert [p["run"] for p in lineage] == ["child", "parent"]


def test_resume_continues_the_fine_tuning_exactly(cli, parent, new_corpus, charrnn_home):
    common = ["--init-from", "parent", "--corpus", str(new_corpus), "--eval-every", "10",
              "--lr-schedule", "constant", "--batch-size", "8", "--seq-len", "16",
              "--quiet"]  # fmt: skip
    assert cli("train", *common, "--run", "straight", "--max-steps", "40").code == 0
    assert cli("train", *common, "--run", "split", "--max-steps", "20").code == 0
    recorded = store.read_config("split")["parent"]
    r = cli("train", "--run", "split", "--resume", "--max-steps", "40")
    assert r.code == 0, r.err
    straight, split = val_losses(charrnn_home, "straight"), val_losses(charrnn_home, "split")
    assert sorted(straight) == sorted(split) == [10, 20, 30, 40]
    for step in straight:
        assert straight[step] == pytest.approx(split[step], abs=1e-6), step
    assert store.read_config("split")["parent"] == recorded
    # --init-from on --resume may name the run's own parent, and no other
    r = cli("train", "--run", "split", "--resume", "--init-from", "tied", "--max-steps", "41")
    assert r.code == 2 and "fine-tuned from 'parent'" in r.err


@pytest.mark.parametrize(
    "option",
    [
        ["--cell", "gru"],
        ["--layers", "2"],
        ["--hidden-size", "32"],
        ["--embed-size", "16"],
        ["--tie-weights"],
    ],  # fmt: skip
)
def test_a_shape_change_is_refused_in_one_line(cli, parent, new_corpus, charrnn_home, option):
    r = cli("train", "--init-from", "parent", "--corpus", str(new_corpus), "--run", "bad",
            *option, "--max-steps", "3")  # fmt: skip
    assert r.code == 2 and option[0] in r.err and "parent run 'parent'" in r.err
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert not (charrnn_home / "runs" / "bad").exists()


def test_presets_and_options_apply_to_the_new_run(parent, new_corpus):
    trainer = _child("parent", new_corpus, lr=0.002, dropout=0.2)
    assert trainer.tcfg.lr == 0.002 and trainer.mcfg.dropout == 0.2
    job = jobs.prepare(str(new_corpus), "c", False, "cpu", {}, Comm(), init_from="parent")
    assert job.model.hidden_size == 16 and job.train.batch_size == 64  # the shape is the parent's
    assert (
        job.train.lr == config.PRESETS["cpu"]["lr"]
        and job.model.dropout == config.PRESETS["cpu"]["dropout"]
    )


def test_ranks_that_read_different_checkpoint_bytes_are_refused(parent, new_corpus, monkeypatch):
    # (one rank reads the file once, through one descriptor: a replacement cannot mix its bytes)
    first = Comm.broadcast_object
    other = lambda self, obj: "0" * 64 if len(str(obj)) == 64 else first(self, obj)  # noqa: E731
    monkeypatch.setattr(Comm, "broadcast_object", other)
    with pytest.raises(CharrnnError, match="changed while it was read"):
        _child("parent", new_corpus)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_data_parallel_ranks_start_from_the_parents_weights(cli, parent, new_corpus, charrnn_home):
    """Two ranks x 4 streams fine-tune as one process x 8 streams does: had a rank started from
    anything but the parent's weights, DDP's averaged gradients and the losses would differ."""
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("needs torch.distributed with gloo")

    common = ["--init-from", "parent", "--corpus", str(new_corpus), *DIST_OPTS, "--max-steps", "20",
              "--quiet"]  # fmt: skip
    cmd = torchrun(charrnn_home / "logs", "charrnn_cli", "train", "--run", "two", *common,
                    "--batch-size", "4")  # fmt: skip
    p = run_cmd(cmd, dist_env(charrnn_home), charrnn_home.parent, timeout=240)
    assert p.returncode == 0, p.stderr[-3000:]
    r = cli("train", "--run", "one", *common, "--batch-size", "8")
    assert r.code == 0, r.err
    one, two = val_losses(charrnn_home, "one"), val_losses(charrnn_home, "two")
    assert sorted(one) == sorted(two) == [10, 20]
    for step in one:
        assert two[step] == pytest.approx(one[step], abs=DIST_TOL), step
    assert store.read_config("two")["parent"] == store.read_config("one")["parent"]
