"""lanes.py: streams split into lanes on threads draw exactly what one lane draws (ids and line
ends, across noise blocks, from a shared or a per-stream start), and lanes are used only where
they pay."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from charrnn_cli.sampling import lanes, streams
from charrnn_cli.sampling import start as starts
from charrnn_cli.sampling.strategy import Strategy, stream_rngs
from tests.helpers import tiny_model

V = 200  # noise blocks of 16384 // 200 = 81 steps: the runs below cross several


def _draw(m, k: int, B: int, strategy: Strategy, ends, per_stream: bool, monkeypatch):
    monkeypatch.setattr(streams, "lane_count", lambda *a: k)
    g = torch.Generator().manual_seed(5)
    seed = torch.randint(0, V, (B if per_stream else 1, 6), generator=g)
    with torch.inference_mode():
        start = starts.prime(m, seed)  # (1 or B) rows
    if per_stream:  # made under inference mode, as `charrnn sample` makes them
        with torch.inference_mode():
            s = streams.NumpyStreams(m, start, strategy, stream_rngs(7, B), ends)
    else:
        s = streams.NumpyStreams(m, start, strategy, stream_rngs(7, B), ends)
    assert len(s.lanes) == (k if k > 1 else 0)
    chunks = list(s.run(300, chunk=64))
    ids = np.concatenate([c[0] for c in chunks])
    got_ends = np.concatenate([c[1] for c in chunks]) if ends else None
    return ids, got_ends


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("line_ends", [False, True])
def test_lanes_draw_what_one_lane_draws(monkeypatch, layers, temperature, line_ends):
    m = tiny_model(V, 8, 12, layers=layers)
    ends = starts.LineEnds(newline=0, budget=5) if line_ends else None
    for per_stream in (False, True):
        args = (40, Strategy(temperature), ends, per_stream, monkeypatch)
        one, one_ends = _draw(m, 1, *args)
        three, three_ends = _draw(m, 3, *args)  # lanes of 13, 13 and 14 streams
        np.testing.assert_array_equal(one, three)
        if line_ends:
            assert one_ends.any()  # lines did end, and streams went back to the start
            np.testing.assert_array_equal(one_ends, three_ends)


def test_lanes_are_used_only_where_they_pay(monkeypatch):
    assert lanes._scripted() is not None  # this torch compiles the lane loop
    lstm, gru = tiny_model(V, 8, 12), tiny_model(V, 8, 12, cell="gru")
    monkeypatch.setattr(lanes.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert lanes.lane_count(lstm, 64, Strategy()) == 2
    assert lanes.lane_count(lstm, 31, Strategy()) == 1  # fewer than 16 streams a lane
    assert lanes.lane_count(gru, 64, Strategy()) == 1  # only the LSTM has a lane loop
    assert lanes.lane_count(lstm, 64, Strategy(0.0)) == 1  # greedy
    assert lanes.lane_count(lstm, 64, Strategy(top_k=5)) == 1  # masks stay on numpy
    monkeypatch.setattr(lanes.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert lanes.lane_count(lstm, 64, Strategy()) == 1  # one CPU: no second lane
    monkeypatch.setattr(lanes.os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert lanes.lane_count(lstm, 64, Strategy()) == 4  # 16 streams a lane at least
