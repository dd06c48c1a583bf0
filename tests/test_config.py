"""The configs and the options of `charrnn train`: each option in one place, one to one."""

from __future__ import annotations

import inspect
import typing

import pytest

from charrnn_cli import config
from charrnn_cli.commands import train as train_cmd
from charrnn_cli.errors import UsageError
from charrnn_cli.model import FUSED

# `charrnn train` options that are not part of a run's config
COMMAND_ONLY = {"corpus", "run", "resume", "init_from", "preset", "nproc", "quiet"}


def _options() -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(train_cmd.train).parameters)


def test_every_config_field_is_an_option_and_every_option_a_field():
    fields = config.OPTION_KEYS
    assert "vocab_size" not in fields  # set from the data
    options = set(_options())
    assert options - COMMAND_ONLY == fields, "add the option and the config field together"
    assert not COMMAND_ONLY & fields


def test_config_options_default_to_none_so_a_resume_can_tell_given_from_not():
    for name, param in _options().items():
        if name in config.OPTION_KEYS:
            assert param.default is None, name


def test_the_choices_are_the_configs():
    hints = typing.get_type_hints(train_cmd.train)
    choices = {
        "cell": config.Cell,
        "lr_schedule": config.Schedule,
        "optimizer": config.Optimizer,
        "precision": config.Precision,
        "preset": config.Preset,
        "vocab": config.Vocab,
    }
    for name, alias in choices.items():
        assert typing.get_args(hints[name]) == (alias, type(None)), name
    assert set(typing.get_args(config.Preset)) == set(config.PRESETS)
    assert set(FUSED) == set(config.CELLS)
    for values in config.PRESETS.values():
        assert set(values) <= config.OPTION_KEYS


def test_given_options_reach_the_config_by_name(cli, tiny_corpus, charrnn_home):
    from charrnn_cli.storage import store

    r = cli(
        "train",
        "--corpus",
        str(tiny_corpus),
        "--run",
        "r",
        "--hidden-size",
        "8",
        "--embed-size",
        "8",
        "--layers",
        "1",
        "--batch-size",
        "4",
        "--seq-len",
        "8",
        "--max-steps",
        "3",
        "--warmup-steps",
        "1",
        "--min-lr-fraction",
        "0.5",
        "--grad-clip",
        "2",
        "--save-every",
        "3",
        "--random-seed",
        "5",
    )
    assert r.code == 0, r.err
    stored = store.read_config("r")
    assert stored["model"]["hidden_size"] == 8 and stored["model"]["embed_size"] == 8
    want = {
        "batch_size": 4,
        "seq_len": 8,
        "max_steps": 3,
        "warmup_steps": 1,
        "min_lr_fraction": 0.5,
        "grad_clip": 2.0,
        "save_every": 3.0,
        "random_seed": 5,
    }
    assert {k: stored["train"][k] for k in want} == want


def test_the_resume_refusal_names_what_may_change():
    with pytest.raises(UsageError) as err:
        config.merge_resume(config.ModelConfig(), config.TrainConfig(), {"lr": 0.5})
    assert str(err.value) == (
        "--lr 0.5 differs from the run's stored 0.01; on --resume only --epochs, --max-steps, "
        "--max-minutes, --device, --precision, --eval-every, --save-every and the --sample-* "
        "options may change (start a new --run to change it)"
    )
    anew = {k: 7 for k in (*config.RESUMABLE_ANEW, *config.SAMPLE_KEYS)} | {"sample_seed": "A:"}
    model, train = config.merge_resume(config.ModelConfig(), config.TrainConfig(), anew)
    assert all(getattr(train, k) == value for k, value in anew.items())
