"""Sampling: the seed comes first, the same seed gives the same text on every engine and in a
batch, unknown seed characters are named, and a closed pipe ends quietly."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from charrnn_cli.sampling.samples import Strategy, beam_search, sample, sample_many
from charrnn_cli.sampling.strategy import AHEAD_STREAMS, Noise, mask_numpy, mask_torch, stream_rngs
from tests.helpers import TINY, stdin_bytes, tiny_model


@pytest.mark.parametrize(
    "strategy", [Strategy(1.0), Strategy(0.8, top_k=3), Strategy(1.3, top_p=0.6), Strategy(0.0)]
)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_seed_gives_the_same_text_on_the_numpy_and_the_torch_engine(cell, strategy):
    # the torch engine is what a GPU runs; on the CPU device it must draw the very same text
    m = tiny_model(cell=cell)
    runs = [
        "".join(sample(m, "abcdefg", [1, 2], 400, strategy, random_seed=5, engine=engine))
        for engine in ("numpy", "torch")
    ]
    assert runs[0] == runs[1] and len(runs[0]) == 400
    assert strategy.greedy or len(set(runs[0])) > 3  # a real draw, not one character


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_num_samples_in_a_batch_are_the_samples_of_consecutive_seeds(engine):
    m = tiny_model(cell="gru")
    s = Strategy(0.9, top_k=5)
    for seed_ids, unigram in (([1], None), ([], [1, 2, 3, 0, 5, 1, 1])):
        batch = sample_many(
            m, "abcdefg", seed_ids, 60, s, 5, 2, random_seed=7, unigram=unigram, engine=engine
        )
        many = list(batch)
        alone = [
            "".join(sample(m, "abcdefg", seed_ids, 60, s, random_seed=7 + k, unigram=unigram))
            for k in range(5)
        ]
        assert many == alone and len(set(many)) == 5 and all(len(x) == 60 for x in many)


def test_noise_drawn_ahead_on_the_worker_is_each_streams_own_sequence():
    # many streams draw their next block on a worker thread; one stream draws in place
    B, V = AHEAD_STREAMS + 1, 4096  # 4 rows a block: a dozen blocks in 50 steps
    many, alone = Noise(stream_rngs(3, B), V), Noise(stream_rngs(3, B)[B - 1 :], V)
    assert many.spare is not None and alone.spare is None
    for _ in range(50):
        np.testing.assert_array_equal(many.next()[B - 1], alone.next()[0])


def test_top_k_and_top_p_masks_agree_in_numpy_and_torch():
    logits = torch.randn(50, 30, generator=torch.Generator().manual_seed(0))
    logits[0, :6] = 9.0  # six tied likeliest: a top-k of 4 keeps all six in both
    for s in (Strategy(1.0, top_k=4), Strategy(0.7, top_p=0.8), Strategy(1.0, top_k=6, top_p=0.5)):
        a = np.isinf(mask_numpy(logits.numpy(), s))
        b = torch.isinf(mask_torch(logits, s)).numpy()
        assert (a == b).all() and (~a).sum(1).min() >= 1
        if s.top_k and not s.top_p:
            assert (~a).sum(1).tolist() == [6] + [4] * 49
    assert (~np.isinf(mask_numpy(logits.numpy(), Strategy(1.0, top_p=0.8)))).sum(1).min() >= 1


def test_same_seed_same_text_and_length():
    m = tiny_model(5, 4, 8, layers=1)
    a = "".join(sample(m, "abcde", [0, 1], 50, Strategy(1.0), random_seed=3))
    b = "".join(sample(m, "abcde", [0, 1], 50, Strategy(1.0), random_seed=3))
    c = "".join(sample(m, "abcde", [0, 1], 50, Strategy(1.0), random_seed=4))
    assert a == b != c and len(a) == 50


def test_top_k_1_and_greedy_agree():
    m = tiny_model(5, 4, 8, layers=1)
    g = "".join(sample(m, "abcde", [2], 30, Strategy(0.0)))
    k = "".join(sample(m, "abcde", [2], 30, Strategy(1.0, top_k=1), random_seed=9))
    assert g == k


def test_no_seed_draws_from_the_unigram():
    m = tiny_model(5, 4, 8, layers=1)
    text = "".join(sample(m, "abcde", [], 1, Strategy(1.0), random_seed=0, unigram=[0, 0, 5, 0, 0]))
    assert text == "c"


def test_beam_search_length():
    assert len(beam_search(tiny_model(5, 4, 8, layers=1), "abcde", [0], 17, width=4)) == 17


@pytest.fixture
def trained(trained_run):
    """A run `m` trained once for the session (120 steps), copied into the test's store."""
    return trained_run("m", *TINY, "--max-steps", "120", "--lr", "0.02")


def test_sample_command_starts_with_the_seed_and_repeats(cli, trained):
    a = cli("sample", "--run", trained, "--len", "200", "--seed", "the ", "--random-seed", "1")
    b = cli("sample", "--run", trained, "--len", "200", "--seed", "the ", "--random-seed", "1")
    assert a.code == 0, a.err
    assert a.out.startswith("the ") and len(a.out) == 204 and a.out == b.out
    assert a.err == ""  # nothing but data, and nothing on stderr either
    r = cli("sample", "--run", trained, "--len", "50", "--seed", "the ", "--no-echo-seed")
    assert len(r.out) == 50
    r = cli("sample", "--len", "20", "--num", "3", "--separator", "|", "--random-seed", "2")
    assert r.out.count("|") == 2


def test_unknown_seed_characters_are_named(cli, trained):
    r = cli("sample", "--run", trained, "--seed", "Ωmega ✓", "--len", "5")
    assert r.code == 2 and "'Ω'" in r.err and "'✓'" in r.err and "--unknown skip" in r.err
    r = cli("sample", "--run", trained, "--seed", "Ωthe", "--len", "5", "--unknown", "skip")
    assert r.code == 0 and r.out.startswith("the")


def test_no_runs_says_to_train(cli):
    r = cli("sample")
    assert r.code == 1 and "charrnn train" in r.err


def test_pipe_closed_early_is_quiet(trained, charrnn_home):
    cmd = f"{sys.executable} -m charrnn_cli sample --run m --len 200000 | head -c 100"
    r = subprocess.run(["bash", "-c", f"{cmd}; echo rc=${{PIPESTATUS[0]}}"],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "rc=0" in r.stdout and "Traceback" not in r.stderr, r.stderr


def test_seed_from_stdin(cli, trained, monkeypatch):
    stdin_bytes(monkeypatch, b"the cat")
    r = cli("sample", "--run", "m", "--seed", "-", "--len", "10")
    assert r.code == 0 and r.out.startswith("the cat") and len(r.out) == 17


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_long_seed_is_fed_in_pieces_to_the_same_state(cell):
    from charrnn_cli.sampling.start import PRIME_CHUNK, prime, start_state

    model = tiny_model(cell=cell)
    ids = torch.randint(0, 7, (1, 2 * PRIME_CHUNK + 5))
    with torch.inference_mode():
        whole, h = model(ids, start_state(model))  # one call
        pieces = prime(model, ids)
    torch.testing.assert_close(pieces.logits, whole[:, -1], rtol=0, atol=1e-5)
    for a, b in zip(*(x if isinstance(x, tuple) else (x,) for x in (pieces.h, h)), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_a_seed_that_is_not_utf8_says_so_and_where(cli, trained, monkeypatch):
    stdin_bytes(monkeypatch, b"the \xff\xfe")
    r = cli("sample", "--run", "m", "--seed", "-", "--len", "5")
    assert r.code == 4 and "not UTF-8" in r.err and "byte 4" in r.err, r.err
    assert "udc" not in r.err and len(r.err.strip().splitlines()) == 1
