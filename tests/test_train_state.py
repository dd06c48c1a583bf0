"""TrainState: what a checkpoint carries of a run's progress, there and back; resuming on
the checkpoint's streams."""

from __future__ import annotations

import math

import pytest
import torch

from charrnn_cli.config import ModelConfig, TrainConfig, to_dict
from charrnn_cli.errors import UsageError
from charrnn_cli.training.distributed import Comm
from charrnn_cli.training.train_state import Meter, TrainState, keep_streams


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_state_comes_back_from_its_checkpoint(cell):
    h = torch.randn(2, 4, 8)  # (L, B, H)
    hidden = (h, torch.randn(2, 4, 8)) if cell == "lstm" else h
    state = TrainState(
        step=17,
        epoch=2,
        cursor=5,
        elapsed_before=30.0,
        best_val=1.25,
        skipped=3,
        bad_run=2,
        smooth=1.5,
        hidden=hidden,
    )
    ck = state.to_checkpoint(Comm())
    assert ck["elapsed_s"] >= 30.0
    back = TrainState.from_checkpoint(ck, cell, torch.device("cpu"), Comm())
    # bad_run is not saved: a checkpoint is only ever written after a good step
    assert back == TrainState(
        step=17,
        epoch=2,
        cursor=5,
        elapsed_before=ck["elapsed_s"],
        best_val=1.25,
        skipped=3,
        smooth=1.5,
    )
    pairs = zip(back.hidden, hidden, strict=True) if cell == "lstm" else [(back.hidden, h)]
    for got, want in pairs:
        assert torch.equal(got, want)


def test_a_fresh_state_round_trips_without_streams():
    ck = TrainState().to_checkpoint(Comm())
    assert ck["hidden"] == [] and ck["best_val_loss"] == math.inf
    back = TrainState.from_checkpoint(ck, "lstm", torch.device("cpu"), Comm())
    assert back.hidden is None and back.step == 0 and back.smooth is None


def test_epochs_done_counts_the_fraction_of_the_current_pass():
    assert TrainState(epoch=2, cursor=25).epochs_done(100) == 2.25
    assert TrainState(epoch=1, cursor=0).epochs_done(0) == 1.0


def _ck(batch_size: int, world: int) -> dict:
    return {
        "config": to_dict(ModelConfig(), TrainConfig(batch_size=batch_size)),
        "world_size": world,
    }


@pytest.mark.parametrize(
    "saved, world, now, expect",
    [((8, 2), 1, 32, 16), ((16, 1), 2, 32, 8), ((4, 4), 8, 1, 2), ((8, 1), 1, 99, 8)],
)
def test_a_resume_keeps_the_checkpoints_streams(saved, world, now, expect):
    cfg = TrainConfig(batch_size=now)  # what the options say now does not count
    keep_streams(_ck(*saved), cfg, world)
    assert cfg.batch_size == expect


def test_streams_that_the_processes_cannot_share_are_refused():
    with pytest.raises(UsageError, match="reads 6 streams, which 4 processes cannot share"):
        keep_streams(_ck(3, 2), TrainConfig(), 4)


def test_the_meter_gives_the_speed_since_its_last_record_and_the_time_left():
    meter = Meter(per_step=100)
    for _ in range(4):
        meter.add(0.5)  # four steps of 100 characters in 2 seconds
    assert meter.take(now=10.0, steps_left=6) == pytest.approx(3.0)
    assert meter.rate == pytest.approx(200.0) and meter.last == 10.0
    assert (meter.chars, meter.seconds) == (0, 0.0)  # a fresh window
    assert meter.take(now=11.0, steps_left=6) is None and meter.rate is None
