"""The numpy steppers: each equals the model, and B streams a step equal B single streams,
each with its own state, also after some of them are put back to the start state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from charrnn_cli.model import CharRNN
from charrnn_cli.sampling.start import start_state
from charrnn_cli.sampling.steppers import GruRnnStepper, LstmStepper, make_stepper
from tests.helpers import tiny_model

CELLS = [("lstm", 2), ("lstm", 3), ("lstm", 1), ("gru", 2), ("rnn", 2), ("gru", 1), ("rnn", 1)]
TOL = dict(rtol=1e-5, atol=1e-5)


def _model(cell: str, layers: int) -> CharRNN:
    return tiny_model(cell=cell, layers=layers)  # test_sample.py's engines use the same


def _one(i: int) -> np.ndarray:
    return np.array([i])


@pytest.mark.parametrize("cell, layers", CELLS)
def test_numpy_steppers_match_the_model(cell, layers):
    m = _model(cell, layers)
    kind = LstmStepper if cell == "lstm" else GruRnnStepper
    assert isinstance(make_stepper(m, start_state(m)), kind)
    ids = [1, 4, 2, 6, 0, 3]
    with torch.inference_mode():
        logits, h = m(torch.tensor([ids[:3]]), start_state(m))
        more, _ = m(torch.tensor([ids[3:]]), h)
    s = make_stepper(m, start_state(m))
    for t, i in enumerate(ids[:3]):
        np.testing.assert_allclose(s.step(_one(i))[0], logits[0, t], **TOL)
    resumed = make_stepper(m, h)  # the state the seed left, as sampling hands it over
    for t, i in enumerate(ids[3:]):
        np.testing.assert_allclose(resumed.step(_one(i))[0], more[0, t], **TOL)


def _row(h, b: int):
    """Stream b's state (L, 1, H) out of a batch state (L, B, H)."""
    return tuple(t[:, b : b + 1] for t in h) if isinstance(h, tuple) else h[:, b : b + 1]


@pytest.mark.parametrize("cell, layers", CELLS)
def test_a_batch_of_streams_equals_each_stream_alone(cell, layers):
    m = _model(cell, layers)
    B, T = 5, 8
    g = torch.Generator().manual_seed(1)
    with torch.inference_mode():  # a different state per stream: each primed on its own text
        _, h = m(torch.randint(0, 7, (B, 4), generator=g), start_state(m, B))
    ids = torch.randint(0, 7, (T, B), generator=g).numpy()
    batch = make_stepper(m, h, B)
    alone = [make_stepper(m, _row(h, b)) for b in range(B)]
    for t in range(T):
        if t == 4:  # streams 1 and 3 go back to where they started; the others carry on
            back = np.array([False, True, False, True, False])
            batch.restart(back)
            for b in np.flatnonzero(back):
                alone[b] = make_stepper(m, _row(h, b))
        logits = batch.step(ids[t]).copy()  # (B, V)
        for b in range(B):
            np.testing.assert_allclose(logits[b], alone[b].step(ids[t, b : b + 1])[0], **TOL)
