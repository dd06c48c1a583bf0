"""Sample quality: after the default training on Tiny Shakespeare, the share of generated words
(3+ letters) that occur in the corpus, and the speaker lines, for
`charrnn sample --len 2000 --seed "ROMEO:" --temperature 0.8 --random-seed 1`; beside the same
figure for the text that the tutorial's stateless sampler writes with the same model."""

from __future__ import annotations

import os
import re
import subprocess

import torch

from benchmarks.common import charrnn, corpus, emit, scratch_home

WORD = re.compile(r"[a-z']+")
SPEAKER = re.compile(r"^[A-Z][A-Za-z ]+:$", re.M)


def word_share(text: str, vocab: set[str]) -> float:
    words = [w for w in WORD.findall(text.lower())[:-1] if len(w) >= 3]
    return sum(w in vocab for w in words) / max(1, len(words))


@torch.inference_mode()
def stateless_sample(run: str, n: int = 2000) -> str:
    """The tutorial's sampler: each character fed alone, the state thrown away each time."""
    from charrnn_cli.storage.checkpoint import load_run

    model, vocab, _, _ = load_run(run, "best", "cpu")
    gen = torch.Generator().manual_seed(1)
    stoi = {c: i for i, c in enumerate(vocab)}
    cur, out = stoi[":"], []
    for _ in range(n):
        logits, _ = model(torch.tensor([[cur]]))  # a fresh zero state every character
        cur = int(torch.multinomial(torch.softmax(logits[0, -1] / 0.8, -1), 1, generator=gen))
        out.append(vocab[cur])
    return "".join(out)


def run() -> None:
    home = scratch_home()
    env = {**os.environ, "CHARRNN_HOME": home}
    text = corpus().read_text(encoding="utf-8")
    vocab = set(WORD.findall(text.lower()))
    subprocess.run([*charrnn(), "train", "--corpus", str(corpus()), "--run", "q", "--quiet"],
                   env=env, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    sample = subprocess.run(
        [*charrnn(), "sample", "--run", "q", "--len", "2000", "--seed", "ROMEO:",
         "--temperature", "0.8", "--random-seed", "1"],
        env=env, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    ref = stateless_sample("q")
    emit(bench="sample_quality", word_share=round(word_share(sample, vocab), 3),
         speaker_lines=len(SPEAKER.findall(sample)),
         reference="tutorial's stateless sampler, same model",
         reference_word_share=round(word_share(ref, vocab), 3),
         reference_speaker_lines=len(SPEAKER.findall(ref)), target=0.8,
         excerpt=sample[:300])  # fmt: skip
