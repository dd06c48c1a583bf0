"""The AWD-LSTM regularisers (weight drop, locked dropout, embedding dropout): active in
training only, the plain model in eval mode, the same fused kernels, learning, exact resume,
and stored in the run's config."""

from __future__ import annotations

import json

import pytest
import torch

from charrnn_cli import config, model
from tests.helpers import TINY, tiny_model, val_losses

REGS = ["weight_drop", "locked_dropout", "embed_dropout"]
CELLS = ["lstm", "gru", "rnn"]


def _pair(cell: str, **reg: float) -> tuple[model.CharRNN, model.CharRNN]:
    """The same weights twice: a plain model and one with the regularisers `reg`."""
    plain = tiny_model(cell=cell, layers=3)
    dropped = tiny_model(cell=cell, layers=3, **reg)
    dropped.load_state_dict(plain.state_dict())
    return plain, dropped


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("reg", REGS)
def test_active_in_training_only(cell, reg):
    plain, dropped = _pair(cell, **{reg: 0.5})
    idx = torch.randint(0, 7, (4, 9))
    with torch.no_grad():
        assert torch.equal(plain(idx)[0], dropped(idx)[0])  # eval: the plain model, exactly
        plain.train(), dropped.train()
        torch.manual_seed(1)
        trained = dropped(idx)[0]
        assert not torch.allclose(plain(idx)[0], trained)  # plain has no dropout at all
        assert torch.isfinite(trained).all()


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("locked", [0.0, 0.5])
def test_the_regularised_path_is_the_fused_module_with_nothing_dropped(cell, locked, monkeypatch):
    """With the masks made identities, the layer-by-layer (or all-layers) path through
    torch.lstm/gru/rnn_tanh computes what the module computes, state included."""
    plain, dropped = _pair(cell, locked_dropout=locked)
    monkeypatch.setattr(model, "locked", lambda x, p: x)
    x = torch.randn(4, 9, 5)
    h = plain.start_state(4)
    want_y, want_h = plain.rnn(x, h)
    got_y, got_h = model.recur_dropped(dropped.rnn, dropped.cfg, x, h)
    torch.testing.assert_close(got_y, want_y)
    pair = cell == "lstm"
    for a, b in zip(want_h if pair else (want_h,), got_h if pair else (got_h,), strict=True):
        torch.testing.assert_close(a, b)


def test_weight_drop_drops_hidden_weights_and_keeps_their_gradient():
    _, dropped = _pair("lstm", weight_drop=0.5)
    dropped.train()
    logits, _ = dropped(torch.randint(0, 7, (2, 5)))
    logits.sum().backward()
    assert dropped.rnn.weight_hh_l0.grad is not None
    zero_rows = (dropped.rnn.weight_hh_l0.grad == 0).float().mean()
    assert 0.2 < zero_rows < 0.8  # DropConnect: the dropped weights get no gradient


def test_locked_mask_is_shared_across_time_and_embedding_drops_whole_rows():
    out = model.locked(torch.ones(8, 20, 6), 0.5)
    assert torch.equal(out, out[:, :1].expand_as(out))  # one mask per stream
    assert set(out.unique().tolist()) <= {0.0, 2.0}
    m = tiny_model(vocab_size=3, embed_size=16, embed_dropout=0.5)
    idx = torch.tensor([[0, 1, 2] * 10])
    torch.manual_seed(0)
    e = model.embed_dropped(m.embed, idx, m.cfg)[0]  # (30, 16)
    for c in range(3):
        rows = e[c::3]
        assert torch.equal(rows, rows[:1].expand_as(rows))  # a character: dropped everywhere
        w = m.embed.weight[c]
        assert torch.equal(rows[0], torch.zeros_like(w)) or torch.allclose(rows[0], 2 * w)


REG_ARGS = ["--weight-drop", "0.3", "--locked-dropout", "0.2", "--embed-dropout", "0.1"]


def test_a_regularised_model_learns_and_resumes_exactly(cli, tiny_corpus, charrnn_home):
    common = ["--corpus", str(tiny_corpus), *TINY, "--layers", "2", "--eval-every", "20",
              "--lr", "0.02", "--lr-schedule", "constant", "--device", "cpu",
              *REG_ARGS]  # fmt: skip
    assert cli("train", *common, "--run", "straight", "--max-steps", "80").code == 0
    assert cli("train", *common, "--run", "split", "--max-steps", "40").code == 0
    r = cli("train", *common, "--run", "split", "--max-steps", "80", "--resume")
    assert r.code == 0, r.err
    straight, split = val_losses(charrnn_home, "straight"), val_losses(charrnn_home, "split")
    assert straight[80] < straight[20] - 0.3  # it learns
    for step in straight:
        assert straight[step] == pytest.approx(split[step], abs=1e-6), step
    stored = json.loads((charrnn_home / "runs" / "straight" / "config.json").read_text())
    assert stored["model"]["weight_drop"] == 0.3
    assert stored["model"]["locked_dropout"] == 0.2 and stored["model"]["embed_dropout"] == 0.1
    r = cli("train", "--run", "split", "--resume", "--weight-drop", "0.5", "--max-steps", "90")
    assert r.code == 2 and "--weight-drop" in r.err


def test_older_configs_load_with_the_regularisers_off_and_tutorial_keeps_them_off():
    m, t = config.build({})
    stored = config.to_dict(m, t)
    for key in REGS:
        assert getattr(m, key) == 0.0
        del stored["model"][key]
    again, _ = config.from_dict(stored)
    assert all(getattr(again, key) == 0.0 for key in REGS)


@pytest.mark.parametrize("bad", [["--weight-drop", "1.0"], ["--locked-dropout", "-0.1"],
                                 ["--embed-dropout", "nan"]])  # fmt: skip
def test_out_of_range_values_are_refused(cli, tiny_corpus, bad):
    r = cli("train", "--corpus", str(tiny_corpus), *TINY, "--max-steps", "2", *bad)
    assert r.code == 2 and bad[0] in r.err
