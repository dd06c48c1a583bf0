"""Log-probabilities for the streams that ask for them: the drawn character's and the top k's.

They are the model's own distribution at each position (softmax of its logits, before
temperature and top-k/p), the per-character surprisal `charrnn viz` shows, in OpenAI's
completions shape (`serve.held.shaped`): `tokens`, `token_logprobs`, `top_logprobs`,
`text_offset`. Each row's are kept compactly in its job's `Scores` until they are sent.
"""

from __future__ import annotations

import numpy as np

from charrnn_cli.serve.jobs import Job


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
        k = max(jobs[r].logprobs or 0 for r in rows)
        order = np.argsort(-lp, axis=-1, kind="stable")[:, :k]
        top = np.take_along_axis(lp, order, -1).tolist()
        order, drawn = order.tolist(), ids[rows].tolist()
        chosen = lp[np.arange(len(rows)), drawn].tolist()
        for n, r in enumerate(rows):
            scores = jobs[r].scores
            assert scores is not None
            scores.add(drawn[n], chosen[n], order[n][: scores.k], top[n][: scores.k])
