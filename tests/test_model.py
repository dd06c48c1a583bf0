"""CharRNN: shapes, zero initial state, and state carried across windows."""

from __future__ import annotations

import pytest
import torch

from charrnn_cli.config import ModelConfig
from charrnn_cli.model import CharRNN, detach, flops_per_char, parameter_count, shapes


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_forward_shapes_and_state(cell):
    torch.manual_seed(0)
    m = CharRNN(ModelConfig(cell=cell, vocab_size=11, embed_size=8, hidden_size=16, layers=2))
    idx = torch.randint(0, 11, (3, 7))
    logits, h = m(idx)
    assert logits.shape == (3, 7, 11)
    hs = h[0] if isinstance(h, tuple) else h
    assert hs.shape == (2, 3, 16)
    # None is the same as an explicit zero state
    zeros = torch.zeros(2, 3, 16)
    logits0, _ = m(idx, (zeros, zeros) if cell == "lstm" else zeros)
    torch.testing.assert_close(logits, logits0)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_carrying_the_state_equals_one_long_window(cell):
    torch.manual_seed(0)
    m = CharRNN(ModelConfig(cell=cell, vocab_size=9, embed_size=4, hidden_size=16, layers=2))
    idx = torch.randint(0, 9, (2, 12))
    whole, _ = m(idx)
    first, h = m(idx[:, :5])
    second, _ = m(idx[:, 5:], detach(h))
    torch.testing.assert_close(torch.cat([first, second], 1), whole)


def test_tied_weights_share_storage():
    m = CharRNN(ModelConfig(vocab_size=5, embed_size=16, hidden_size=16, tie_weights=True))
    assert m.head.weight.data_ptr() == m.embed.weight.data_ptr()


def test_flops_count_matches_hand_count():
    cfg = ModelConfig(cell="lstm", vocab_size=65, embed_size=64, hidden_size=128, layers=2)
    hand = 2 * (4 * 128 * (64 + 128) + 4 * 128 * (128 + 128) + 128 * 65)
    assert flops_per_char(cfg) == hand


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("start", ["learned", "zero"])
@pytest.mark.parametrize("tie", [False, True])
def test_the_shapes_by_arithmetic_are_the_models_own(cell, layers, start, tie):
    embed = 12 if tie else 5  # a tied head needs embed_size == hidden_size
    cfg = ModelConfig(vocab_size=7, cell=cell, layers=layers, hidden_size=12, embed_size=embed,
                      start_state=start, tie_weights=tie)  # fmt: skip
    model = CharRNN(cfg)
    assert shapes(cfg) == {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert list(shapes(cfg)) == list(model.state_dict())
    assert parameter_count(cfg) == model.num_parameters()
