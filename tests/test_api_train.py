"""`charrnn.train` is `charrnn train` from Python: the same weights for the same options and
seed, a run the CLI reads, records for `on_event` (which can stop training), Ctrl-C saving then
raising KeyboardInterrupt, mistakes as CharrnnError; and `fetch`, `runs`, `history`, `plot`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest
import torch

import charrnn_cli as charrnn
from charrnn_cli.errors import CharrnnError, UsageError
from tests.helpers import TINY, TINY_TEXT

# tests.helpers.TINY as keywords
SMALL = dict(hidden_size=16, embed_size=8, layers=1, batch_size=8, seq_len=16)


def weights(home, run: str, which: str = "last") -> dict[str, torch.Tensor]:
    path = home / "runs" / run / f"{which}.pt"
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_api_trains_what_the_cli_trains(cli, tiny_corpus, charrnn_home, capsys):
    flags = ["--max-steps", "12", "--eval-every", "5", "--random-seed", "3"]
    assert cli("train", "--corpus", str(tiny_corpus), "--run", "c", *TINY, *flags).code == 0
    m = charrnn.train(
        tiny_corpus, "a", progress=False, max_steps=12, eval_every=5, random_seed=3, **SMALL
    )
    assert type(m).__name__ == "Model" and m.name == "a" and m.checkpoint == "best"
    assert same(weights(charrnn_home, "a"), weights(charrnn_home, "c"))
    assert same(weights(charrnn_home, "a", "best"), weights(charrnn_home, "c", "best"))
    assert capsys.readouterr().out == ""  # a library prints nothing on stdout
    shown = cli("sample", "--run", "a", "--len", "20", "--random-seed", "1")
    assert shown.code == 0 and len(shown.out) >= 20


def test_on_event_hears_every_record_as_a_dict_and_false_stops_and_saves(tiny_corpus):
    seen: list[dict] = []

    def stop_at_7(e: dict) -> bool:
        seen.append(e)
        return not (e["kind"] == "step" and e["step"] >= 7)

    m = charrnn.train(tiny_corpus, "e", progress=False, on_event=stop_at_7, max_steps=500,
                      eval_every=3, **SMALL)  # fmt: skip
    kinds = [e["kind"] for e in seen]
    assert kinds[0] == "start" and kinds[-1] == "end" and {"step", "eval", "save"} <= set(kinds)
    assert all(type(e) is dict for e in seen)
    steps = [e for e in seen if e["kind"] == "step"]
    assert all({"step", "loss", "chars_per_s", "lr"} <= set(e) for e in steps)
    evals = [e for e in seen if e["kind"] == "eval"]
    assert all({"step", "val_loss", "val_bpc", "best"} <= set(e) for e in evals)
    end = seen[-1]
    assert end["reason"] == "stopped" and 7 <= end["step"] < 500
    assert end["step"] == max(r["step"] for r in m.history()["train"])
    # stopped as --max-steps stops: a last evaluation and save at the step it ended on
    assert m.history()["held_out"][-1]["step"] == end["step"]
    assert charrnn.load("e", checkpoint="last") is not None


def test_a_ctrl_c_saves_the_run_then_raises_keyboard_interrupt(tiny_corpus, charrnn_home):
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)

    at: list[int] = []

    def ctrl_c(e: dict) -> None:  # at the first step record (one a second at most)
        if e["kind"] == "step" and not at:
            at.append(e["step"])
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt, match="--resume"):
        charrnn.train(tiny_corpus, "k", progress=False, on_event=ctrl_c, max_steps=100_000,
                      eval_every=100_000, **SMALL)  # fmt: skip
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    saved = torch.load(charrnn_home / "runs" / "k" / "last.pt", weights_only=True)
    assert saved["step"] == at[0]  # the step it was on, finished and saved
    charrnn.load("k", checkpoint="last")


def test_resume_takes_up_exactly_and_text_in_memory_is_a_corpus(charrnn_home):
    straight = charrnn.train(TINY_TEXT, "s", progress=False, max_steps=10, **SMALL)
    charrnn.train(TINY_TEXT, "r", progress=False, max_steps=5, **SMALL)
    resumed = charrnn.train(run="r", resume=True, progress=False, max_steps=10)
    assert same(weights(charrnn_home, "r"), weights(charrnn_home, "s"))
    corpus = json.loads((charrnn_home / "runs" / "r" / "config.json").read_text())["corpus"]
    assert corpus["name"].startswith("text-") and resumed.vocab == straight.vocab


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"hidden_sise": 16}, "no option 'hidden_sise'; its options are .*hidden_size"),
        ({"hidden_size": 0}, "'hidden_size': 0 is not in the range"),
        ({"cell": "lstn"}, "'cell': 'lstn' is not one of 'lstm', 'gru', 'rnn'"),
        ({"layers": 2.5}, "'layers': 2.5 is float, not int"),
        ({"resume": None}, "'resume'"),
        ({"nproc": 2}, "--nproc N"),
        ({"corpus": "/no/such/file.txt"}, "no corpus or file named"),
        ({"corpus": 3}, "corpus must be"),
        ({"lr": 0.0}, "--lr must be positive"),
    ],
)
def test_mistakes_raise_charrnn_error_with_the_cli_s_line(tiny_corpus, options, message):
    options = {"corpus": tiny_corpus, **options}
    with pytest.raises(UsageError, match=message) as caught:
        charrnn.train(run="m", progress=False, max_steps=2, **options)
    assert "\n" not in str(caught.value)


def test_an_existing_run_is_the_cli_s_error(tiny_corpus):
    charrnn.train(tiny_corpus, "b", progress=False, max_steps=2, **SMALL)
    with pytest.raises(CharrnnError, match="already exists"):
        charrnn.train(tiny_corpus, "b", progress=False, max_steps=2, **SMALL)


def test_history_plot_runs_and_fetch(tiny_corpus, cli):
    m = charrnn.train(tiny_corpus, "h", progress=False, max_steps=6, eval_every=3, **SMALL)
    h = m.history()
    assert [r["step"] for r in h["held_out"]] == [3, 6]
    assert {"step", "loss", "bits_per_char", "accuracy"} <= set(h["held_out"][0])
    assert h["train"] and {"step", "loss", "lr"} <= set(h["train"][0])
    listed = charrnn.runs()
    assert listed == json.loads(cli("runs", "--json").out) and listed[0]["name"] == "h"
    path = charrnn.fetch("pysrc", max_bytes=20_000, progress=False)
    assert path.is_file() and path == charrnn.fetch("pysrc", progress=False)
    pytest.importorskip("matplotlib")
    fig = m.plot()
    assert type(fig).__name__ == "Figure" and len(fig.axes[0].lines) == 2
    exported = m.export(tiny_corpus.parent / "x")
    with pytest.raises(CharrnnError, match="exported folder"):
        charrnn.load(str(exported)).history()


@pytest.mark.slow
def test_the_api_leaves_torch_out_until_a_function_needs_it():
    code = (
        "import sys, charrnn_cli as c, charrnn_cli.training.train\n"
        "assert callable(c.train) and callable(c.runs) and callable(c.fetch)\n"
        "assert issubclass(c.CharrnnError, Exception)\n"
        "from charrnn_cli.training.train import Trainer\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    code = (
        "import sys, charrnn_cli as c; c.train, c.fetch, c.runs; assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_docs_api_md_shows_every_name_of_the_api():
    from pathlib import Path

    from charrnn_cli import api

    text = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text(encoding="utf-8")
    for name in charrnn.__all__:
        assert f"charrnn.{name}" in text, name
    for name, value in vars(api.Model).items():
        if name.startswith("_"):
            continue
        shown = f"m.{name}(" if callable(value) else f"`{name}`"
        assert shown in text, f"docs/api.md has no example of Model.{name}"
    examples = "".join(re.findall(r"```python\n(.*?)```", text, re.S))
    for name in ("train", "fetch", "runs", "load", "CharrnnError"):
        assert f"charrnn.{name}" in examples, f"docs/api.md has no example of charrnn.{name}"
