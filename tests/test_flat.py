"""Flat buffers: the same training as per-parameter tensors, and checkpoints in the same format."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from charrnn_cli import checkpoint
from charrnn_cli.config import ModelConfig, TrainConfig
from charrnn_cli.flat import FlatOptimizer
from charrnn_cli.model import CharRNN
from charrnn_cli.optim import make_optimizer
from tests.helpers import tiny_model

TEXT = torch.randint(0, 7, (4, 9), generator=torch.Generator().manual_seed(1))


def _twins(kind: str) -> tuple[CharRNN, CharRNN, TrainConfig]:
    cfg = TrainConfig(optimizer=kind, weight_decay=0.1, lr=0.01)
    a, b = tiny_model(7, 16, 16, seed=None), tiny_model(7, 16, 16, seed=None)
    b.load_state_dict(a.state_dict())
    return a, b, cfg


def _step(model: CharRNN, opt, clip: float) -> float:
    """One training step as the trainer takes it, with the clip of either layout."""
    opt.zero_grad(set_to_none=True)
    logits, _ = model(TEXT[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, 7), TEXT[:, 1:].reshape(-1))
    loss.backward()
    if isinstance(opt, FlatOptimizer):
        norm = opt.flat.clip_(clip)
    else:
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    return float(norm)


@pytest.mark.parametrize("kind", ["adam", "adamw"])
def test_flat_training_follows_the_per_parameter_one(kind):
    plain_model, flat_model, cfg = _twins(kind)
    plain, flat = make_optimizer(plain_model, cfg), make_optimizer(flat_model, cfg, flat=True)
    assert isinstance(flat, FlatOptimizer)
    for clip in (0.05, float("inf"), 0.05, 5.0):  # clipped, unclipped, clipped, not reached
        assert _step(flat_model, flat, clip) == pytest.approx(_step(plain_model, plain, clip))
    for (name, a), b in zip(plain_model.named_parameters(), flat_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    # the parameters still live in the buffer, and autograd still adds into its views
    assert flat.flat.owns_grads()
    data = flat.flat.data.untyped_storage().data_ptr()
    assert all(p.untyped_storage().data_ptr() == data for p in flat_model.parameters())


@pytest.mark.parametrize("kind", ["adam", "adamw"])
def test_the_state_dict_is_the_per_parameter_one_both_ways(kind):
    plain_model, flat_model, cfg = _twins(kind)
    plain, flat = make_optimizer(plain_model, cfg), make_optimizer(flat_model, cfg, flat=True)
    for _ in range(3):
        _step(plain_model, plain, 1.0)
        _step(flat_model, flat, 1.0)
    mine, theirs = flat.state_dict(), plain.state_dict()
    assert [g["params"] for g in mine["param_groups"]] == [
        g["params"] for g in theirs["param_groups"]
    ]
    assert mine["state"].keys() == theirs["state"].keys()
    for i, one in theirs["state"].items():
        assert one.keys() == mine["state"][i].keys()
        for key, value in one.items():
            torch.testing.assert_close(mine["state"][i][key], value, rtol=1e-4, atol=1e-6)
    # a flat run resumes from a per-parameter checkpoint and the other way round: the next
    # step is the same as the source's own next step
    again = tiny_model(7, 16, 16, seed=None)
    again.load_state_dict(plain_model.state_dict())
    resumed = make_optimizer(again, cfg, flat=True)
    resumed.load_state_dict(theirs)
    back = tiny_model(7, 16, 16, seed=None)
    back.load_state_dict(flat_model.state_dict())
    unflat = make_optimizer(back, cfg)
    unflat.load_state_dict(mine)
    _step(plain_model, plain, 1.0)
    _step(again, resumed, 1.0)
    _step(flat_model, flat, 1.0)
    _step(back, unflat, 1.0)
    for a, b in zip(plain_model.parameters(), again.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for a, b in zip(flat_model.parameters(), back.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_a_state_of_other_groups_is_refused():
    model, _, cfg = _twins("adamw")
    flat = make_optimizer(model, cfg, flat=True)
    other = make_optimizer(tiny_model(7, 16, 16, seed=None), TrainConfig(optimizer="adam"))
    with pytest.raises(ValueError, match="groups"):
        flat.load_state_dict(other.state_dict())


def test_a_checkpoint_of_a_flat_model_holds_each_weight_on_its_own():
    model, _, cfg = _twins("adam")
    make_optimizer(model, cfg, flat=True)
    data = checkpoint.payload(model, ModelConfig(vocab_size=7), cfg, "abcdefg")
    for name, t in data["model"].items():
        assert t.untyped_storage().nbytes() == t.numel() * t.element_size(), name
