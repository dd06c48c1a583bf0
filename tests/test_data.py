"""The torch-free job layer: the held-out split, the size checks, the corpus record."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from charrnn_cli.config import TrainConfig
from charrnn_cli.errors import UsageError
from charrnn_cli.training.job import CorpusInfo, check_data, min_chars, split


def test_the_held_out_part_is_the_tail():
    ids = np.arange(100)
    train, val = split(ids, 0.1)
    assert train.tolist() == list(range(90)) and val.tolist() == list(range(90, 100))
    assert len(split(np.arange(10), 0.01)[1]) == 2  # at least one input and its target


def test_min_chars():
    assert min_chars(32, 32) == 32 * 33


@pytest.mark.parametrize(
    "ids, world, words",
    [
        ([], 1, "the corpus is empty"),
        ([3] * 500, 1, "fewer than 2 distinct characters"),
        (
            [0, 1] * 100,
            1,
            "has 190 training characters but --batch-size 8 x (--seq-len 32 + 1) needs 264",
        ),
        ([0, 1] * 200, 2, "x 2 processes needs 528"),
    ],
)
def test_a_corpus_too_small_is_refused_saying_what_fits(ids, world, words):
    with pytest.raises(UsageError) as err:
        check_data(np.array(ids, dtype=np.uint8), TrainConfig(batch_size=8), world)
    assert words in str(err.value)


def test_a_corpus_that_fits_passes():
    check_data(np.array([0, 1] * 200, dtype=np.uint8), TrainConfig(batch_size=8), 1)


def test_the_corpus_record_round_trips_in_config_jsons_layout():
    record = CorpusInfo("tiny", "/x/tiny.txt", "ab" * 32, "file:/x/tiny.txt")
    data = json.loads(json.dumps(record.to_dict()))
    assert list(data) == ["name", "path", "sha256", "source"]
    assert CorpusInfo.from_dict(data) == record


def test_the_corpus_record_of_a_run_is_what_config_json_holds(cli, tiny_corpus, charrnn_home):
    from charrnn_cli import corpora
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
        "--max-steps",
        "2",
    )
    assert r.code == 0, r.err
    stored = store.read_config("r")["corpus"]
    assert CorpusInfo.from_dict(stored) == CorpusInfo.of(corpora.resolve(str(tiny_corpus)))


def test_preparing_a_run_does_not_import_torch():
    code = (
        "import sys, charrnn_cli.training.jobs, charrnn_cli.training.job;"
        " sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
