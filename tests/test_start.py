"""The start state: fresh text begins from it, training restarts streams from it (so the model
learns to begin there), it survives save, load and resume, and runs from before it load as
zero-start runs."""

from __future__ import annotations

import random

import pytest
import torch

from charrnn_cli import config
from charrnn_cli.data.batches import restart_mask
from charrnn_cli.model import CharRNN
from charrnn_cli.storage import checkpoint
from tests.helpers import TINY, tiny_model, val_losses

NAMES = ["ROMEO", "JULIET", "NURSE", "FRIAR", "TYBALT"]


def _model(cell: str = "lstm", **kw) -> CharRNN:
    model = tiny_model(7, 8, 6, cell=cell, **kw)
    if model.start is not None:
        with torch.no_grad():
            model.start.normal_()  # a trained start state is not zeros
    return model


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_fresh_text_begins_from_the_start_state(cell):
    model = _model(cell)
    x = torch.tensor([[1, 2, 3, 4]])
    fresh, _ = model(x)
    given, _ = model(x, model.start_state(1))
    zeros, _ = model(x, _zeros(model))
    torch.testing.assert_close(fresh, given)
    assert not torch.allclose(fresh, zeros)


def _zeros(model: CharRNN):
    z = torch.zeros(model.cfg.layers, 1, model.cfg.hidden_size)
    return (z, z.clone()) if model.cfg.cell == "lstm" else z


def test_zero_start_models_have_no_start_parameter():
    model = _model(start_state="zero")
    assert model.start is None and model.start_state(3) is None
    assert "start" not in model.state_dict()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_restart_sends_only_the_masked_streams_to_the_start(cell):
    model = _model(cell)
    h = model.start_state(3)
    carried = tuple(torch.randn_like(t) for t in h) if cell == "lstm" else torch.randn_like(h)
    out = model.restart(carried, torch.tensor([True, False, True]))
    for got, was, start in zip(_parts(out), _parts(carried), _parts(h), strict=True):
        torch.testing.assert_close(got[:, [0, 2]], start[:, [0, 2]])
        torch.testing.assert_close(got[:, 1], was[:, 1])


def _parts(h):
    return h if isinstance(h, tuple) else (h,)


def test_restarts_depend_on_seed_and_step_only_and_come_at_the_rate_asked():
    a = restart_mask(3, 17, 64, 0.25)
    assert torch.equal(a, restart_mask(3, 17, 64, 0.25))
    assert not torch.equal(a, restart_mask(3, 18, 64, 0.25))
    share = torch.stack([restart_mask(0, s, 64, 0.05) for s in range(400)]).float().mean()
    assert 0.04 < float(share) < 0.06


def test_runs_from_before_start_states_load_as_zero_start_runs():
    stored = config.to_dict(*config.build({}))
    del stored["model"]["start_state"], stored["train"]["restart_prob"]
    model_cfg, train_cfg = config.from_dict(stored)
    assert (model_cfg.start_state, train_cfg.restart_prob) == ("zero", 0.0)
    model_cfg.vocab_size = 5
    old_weights = {k: v for k, v in CharRNN(model_cfg).state_dict().items()}
    assert "start" not in old_weights
    CharRNN(model_cfg).load_state_dict(old_weights)  # strict: nothing missing


def test_the_start_state_survives_save_load_and_resume(cli, tiny_corpus, charrnn_home):
    common = ["--corpus", str(tiny_corpus), *TINY, "--eval-every", "10", "--restart-prob",
              "0.3", "--lr-schedule", "constant", "--random-seed", "5"]  # fmt: skip
    assert cli("train", *common, "--run", "straight", "--max-steps", "40").code == 0
    assert cli("train", *common, "--run", "split", "--max-steps", "20").code == 0
    assert cli("train", *common, "--run", "split", "--max-steps", "40", "--resume").code == 0
    runs = charrnn_home / "runs"
    a = checkpoint.load(runs / "straight" / "last.pt")
    b = checkpoint.load(runs / "split" / "last.pt")
    assert float(a["model"]["start"].abs().sum()) > 0  # it was trained
    torch.testing.assert_close(a["model"]["start"], b["model"]["start"], rtol=0, atol=1e-6)
    assert val_losses(charrnn_home, "straight")[40] == pytest.approx(
        val_losses(charrnn_home, "split")[40], abs=1e-6
    )
    model, _ = checkpoint.build_model(a, torch.device("cpu"))
    torch.testing.assert_close(model.start.detach(), a["model"]["start"])


@pytest.fixture
def play(tmp_path):
    rng = random.Random(0)
    words = "the sun is up and we go to the sea where the sky is blue and all is well".split()
    blocks = []
    for _ in range(400):
        line = " ".join(rng.choice(words) for _ in range(rng.randint(4, 9)))
        blocks.append(f"{rng.choice(NAMES)}:\n{line.capitalize()}.\n\n")
    path = tmp_path / "play.txt"
    path.write_text("".join(blocks))
    return path


def test_a_speaker_name_is_followed_by_a_newline_from_the_start_state(cli, play):
    r = cli("train", "--corpus", str(play), "--run", "p", *TINY, "--max-steps", "300",
            "--epochs", "50", "--restart-prob", "0.05")  # fmt: skip
    assert r.code == 0, r.err
    for name in NAMES:
        once = ["--len", "1", "--num", "20", "--separator", "|", "--no-echo-seed"]
        r = cli("sample", "--run", "p", "--seed", f"{name}:", *once, "--random-seed", "1")
        assert r.code == 0, r.err
        assert r.out.count("\n") >= 16, (name, r.out)
