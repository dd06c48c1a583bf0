"""Log-probabilities for the streams that ask for them: the drawn character's and the top k's.

They are the model's own distribution at each position (softmax of its logits, before
temperature and top-k/p), the per-character surprisal `charrnn viz` shows, in OpenAI's
completions shape: `tokens`, `token_logprobs`, `top_logprobs`, `text_offset`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from charrnn_cli.serve.jobs import Job, Logprob


class Logprobs:
    def __init__(self, vocab: str) -> None:
        self.vocab = vocab

    def before(self, logits: np.ndarray, jobs: list[Job]) -> tuple[list[int], np.ndarray]:
        """The rows that asked, and their log-probabilities (rows, V), before a step draws."""
        rows = [r for r, job in enumerate(jobs) if job.logprobs is not None]
        x = logits[rows].astype(np.float64)
        x -= x.max(-1, keepdims=True)
        x -= np.log(np.exp(x).sum(-1, keepdims=True))
        return rows, x

    def after(self, wanted: tuple[list[int], np.ndarray], ids: np.ndarray, jobs: list[Job]) -> None:
        """Record, for each row that asked, the character drawn and the likeliest k."""
        rows, lp = wanted
        vocab = self.vocab
        order = np.argsort(-lp, axis=-1, kind="stable")
        for k, r in enumerate(rows):
            job, i = jobs[r], int(ids[r])
            top = {vocab[j]: float(lp[k, j]) for j in order[k, : job.logprobs].tolist()}
            entry: Logprob = (vocab[i], float(lp[k, i]), top)
            job.lps.append(entry)


def shaped(entries: list[Logprob], offset: int) -> dict[str, Any]:
    """OpenAI's `logprobs` object for a piece of text that starts at `offset` in its choice."""
    offsets = list(range(offset, offset + len(entries)))
    return {
        "tokens": [e[0] for e in entries],
        "token_logprobs": [e[1] for e in entries],
        "top_logprobs": [e[2] for e in entries],
        "text_offset": offsets,
    }
