"""The learning-rate schedule and which weights AdamW decays."""

from __future__ import annotations

import math

import pytest
import torch

from charrnn_cli import config
from charrnn_cli.config import TrainConfig
from charrnn_cli.model import CharRNN
from charrnn_cli.training.optim import decayed, lr_at, make_optimizer
from tests.helpers import tiny_model


def test_the_warm_up_climbs_linearly_to_the_peak():
    cfg = TrainConfig(lr=0.01, warmup_steps=4, lr_schedule="constant")
    assert [lr_at(cfg, s, 100, 0.0) for s in range(6)] == pytest.approx(
        [0.0025, 0.005, 0.0075, 0.01, 0.01, 0.01]
    )


def test_the_cosine_runs_from_the_peak_to_the_floor_at_the_last_step():
    cfg = TrainConfig(lr=0.01, warmup_steps=10, min_lr_fraction=0.1)
    assert lr_at(cfg, 10, 110, 0.0) == pytest.approx(0.01)
    assert lr_at(cfg, 60, 110, 0.0) == pytest.approx(0.01 * (0.1 + 0.9 * 0.5))
    assert lr_at(cfg, 110, 110, 0.0) == pytest.approx(0.001)
    assert lr_at(cfg, 500, 110, 0.0) == pytest.approx(0.001)  # past the end: stays there
    rates = [lr_at(cfg, s, 110, 0.0) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(rates, rates[1:], strict=False))


def test_the_budget_clock_ends_the_cosine_when_it_is_further_along():
    cfg = TrainConfig(lr=0.01, warmup_steps=0, min_lr_fraction=0.0, max_minutes=10)
    # step 0 of 1000, but half the budget spent: the cosine is half way
    assert lr_at(cfg, 0, 1000, 300.0) == pytest.approx(0.005)
    assert lr_at(cfg, 0, 1000, 600.0) == pytest.approx(0.0, abs=1e-12)
    # the steps further along than the clock: the steps lead
    assert lr_at(cfg, 500, 1000, 60.0) == pytest.approx(0.005)
    constant = TrainConfig(lr=0.01, warmup_steps=0, lr_schedule="constant", max_minutes=10)
    assert lr_at(constant, 0, 1000, 599.0) == 0.01


def _model(**kw) -> CharRNN:
    return tiny_model(7, 16, 16, seed=None, **kw)


def test_adamw_decays_the_recurrent_and_output_matrices_only():
    names = set(decayed(_model()))
    assert names == {
        "rnn.weight_ih_l0",
        "rnn.weight_hh_l0",
        "rnn.weight_ih_l1",
        "rnn.weight_hh_l1",
        "head.weight",
    }


def test_a_tied_matrix_is_decayed_as_the_output_layer_it_is():
    model = _model(tie_weights=True)
    assert "embed.weight" in decayed(model)  # the one name of the shared matrix
    opt = make_optimizer(model, TrainConfig(optimizer="adamw", weight_decay=0.1))
    decay, other = opt.param_groups
    assert (decay["weight_decay"], other["weight_decay"]) == (0.1, 0.0)
    assert any(p is model.head.weight for p in decay["params"])
    assert all(p.dim() == 1 or p is model.start for p in other["params"])  # biases, start


def test_untied_presets_decay_what_they_always_did():
    """The rule before tied matrices were decayed: matrices, not the embedding. The presets do
    not tie weights, so their groups (and figures) stay as they were."""
    for name, values in config.PRESETS.items():
        model_cfg, train_cfg = config.build(values)
        model_cfg.vocab_size = 7
        with torch.device("meta"):  # names and shapes only
            model = CharRNN(model_cfg)
        assert not model_cfg.tie_weights, name
        old = [
            n
            for n, p in model.named_parameters()
            if p.dim() >= 2 and "embed" not in n and n != "start"  # (start states came later)
        ]
        assert decayed(model) == old, name


def test_adam_has_one_group_without_decay():
    model = _model()
    opt = make_optimizer(model, TrainConfig(optimizer="adam", weight_decay=0.1))
    assert isinstance(opt, torch.optim.Adam) and not isinstance(opt, torch.optim.AdamW)
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["weight_decay"] == 0
    assert sum(p.numel() for p in opt.param_groups[0]["params"]) == model.num_parameters()


@pytest.mark.parametrize("kind", ["adam", "adamw"])
def test_the_fused_update_on_the_cpu_is_the_op_by_op_one_up_to_rounding(kind):
    cfg = TrainConfig(optimizer=kind, weight_decay=0.1, lr=0.01)
    models = [_model(), _model()]
    models[1].load_state_dict(models[0].state_dict())
    fused = make_optimizer(models[0], cfg)
    name = {id(p): n for n, p in models[0].named_parameters()}
    twin = dict(models[1].named_parameters())
    groups = [dict(g, params=[twin[name[id(p)]] for p in g["params"]], fused=False)
              for g in fused.param_groups]  # fmt: skip
    plain = type(fused)(groups, fused=False)  # the same groups, updated op by op
    assert fused.param_groups[0]["fused"] and not plain.param_groups[0]["fused"]
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        grads = [torch.randn(p.shape, generator=g) for p in models[0].parameters()]
        for m, opt in zip(models, (fused, plain), strict=True):
            for p, gr in zip(m.parameters(), grads, strict=True):
                p.grad = gr.clone()
            opt.step()
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_decay_shrinks_the_decayed_weights_only():
    """One AdamW step with no gradient signal but decay: decayed weights shrink, others not."""
    torch.manual_seed(0)
    model = _model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = make_optimizer(model, TrainConfig(optimizer="adamw", weight_decay=0.5, lr=0.1))
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    shrunk = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert shrunk == set(decayed(model))
    w = "head.weight"
    assert torch.allclose(dict(model.named_parameters())[w], before[w] * (1 - 0.1 * 0.5))
    assert math.isclose(opt.param_groups[0]["weight_decay"], 0.5)


def test_the_learned_start_state_is_not_decayed():
    """A point in state space, not a weight: decay would pull it to the zero state."""
    model = _model()
    assert model.start is not None and "start" not in decayed(model)
    assert "start" not in decayed(_model(start_state="zero"))
