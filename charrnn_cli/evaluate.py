"""Scoring text: loss in nats per character, bits per character, perplexity and accuracy.

The text is read as `rows` contiguous streams (the training layout, see batches.py) in windows
of `chunk` characters, with the hidden state carried through, so each character is predicted
from everything before it in its stream. Only one window is widened to int64 at a time, so
memory stays bounded by the uint8/uint16 ids however long the text is. Used for the held-out
split during training and by `charrnn eval`, so both report the same figure. A long text
(over a million characters) is read as more streams, up to MAX_ROWS, each of at least
ROW_CHARS: the same figure to a few parts in ten thousand, in far fewer sequential steps.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from charrnn_cli.errors import UsageError
from charrnn_cli.model import CharRNN, State
from charrnn_cli.storage.store import LN2

EVAL_ROWS = 16  # streams read in parallel; each starts cold, so few keep the bias negligible
EVAL_CHUNK = 256  # characters per forward call (of EVAL_ROWS rows; fewer with more rows)
ROW_CHARS = 1 << 16  # a long text gets a stream per this many characters...
MAX_ROWS = 1024  # ...up to this many

BLOCK_CHARS = 4_000_000  # characters scored per block of a --corpus text or the API's text


@dataclass
class Score:
    chars: int = 0  # characters predicted
    loss_sum: float = 0.0  # summed cross-entropy, nats
    correct: int = 0  # argmax hits

    @property
    def loss(self) -> float:
        return self.loss_sum / self.chars if self.chars else float("nan")

    @property
    def bits_per_char(self) -> float:
        return self.loss / LN2

    @property
    def perplexity(self) -> float:
        return math.exp(self.loss) if self.chars else float("nan")

    @property
    def accuracy(self) -> float:
        return self.correct / self.chars if self.chars else float("nan")

    def add(self, other: Score) -> None:
        self.chars += other.chars
        self.loss_sum += other.loss_sum
        self.correct += other.correct


def eval_rows(ids: np.ndarray, rows: int | None = None) -> np.ndarray:
    """The text as at most `rows` contiguous streams (a view), each at least 2 characters
    long; by default EVAL_ROWS, or one per ROW_CHARS of a long text."""
    if rows is None:
        rows = max(EVAL_ROWS, min(MAX_ROWS, len(ids) // ROW_CHARS))
    rows = max(1, min(rows, len(ids) // 2))
    per_row = len(ids) // rows
    return ids[: rows * per_row].reshape(rows, per_row)


@torch.inference_mode()
def score(
    model: CharRNN,
    streams: np.ndarray,
    device: torch.device,
    *,
    chunk: int | None = None,
    autocast: torch.dtype | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Score:
    """Score (R, N) streams of ids with the state carried through each row;
    `progress(done, total)` hears the characters scored."""
    was_training = model.training
    model.eval()
    result = Score()
    h: State | None = None
    n = streams.shape[1]
    if chunk is None:  # a window of EVAL_CHUNK x EVAL_ROWS characters, at most 256 columns
        chunk = min(EVAL_CHUNK, max(32, EVAL_CHUNK * EVAL_ROWS // len(streams)))
    ctx = torch.autocast(device.type, dtype=autocast) if autocast else contextlib.nullcontext()
    try:
        for start in range(0, n - 1, chunk):
            end = min(start + chunk, n - 1)
            window = torch.from_numpy(streams[:, start : end + 1].astype(np.int64))  # a copy
            window = window.to(device=device, non_blocking=True)
            x, y = window[:, :-1], window[:, 1:]  # (R, t)
            with ctx:
                logits, h = model(x, h)  # (R, t, V)
            logits = logits.float().reshape(-1, logits.shape[-1])
            target = y.reshape(-1)
            loss = F.cross_entropy(logits, target, reduction="sum")
            hits = (logits.argmax(-1) == target).sum()
            result.loss_sum += float(loss)
            result.correct += int(hits)
            result.chars += target.numel()
            if progress is not None:
                progress(result.chars, streams.shape[0] * (n - 1))
    finally:
        model.train(was_training)
    return result


def score_text(
    model: CharRNN,
    blocks: Iterable[str],
    vocab: str,
    kind: str,
    *,
    strict: bool = False,
    max_chars: int | None = None,
) -> tuple[Score, int, int]:
    """Score a text given in blocks (`charrnn eval --corpus` and the API's `score`): the Score,
    the characters a byte run's bytes make (0 for a run of characters) and the characters
    skipped as outside the vocabulary (refused with `strict`)."""
    from charrnn_cli.data import encode
    from charrnn_cli.vocab import characters_in

    dev = next(model.parameters()).device
    total, chars, skipped, taken = Score(), 0, 0, 0
    for text in blocks:
        if kind == "bytes":
            ids, dropped = np.frombuffer(text.encode("utf-8"), dtype=np.uint8), 0
        else:
            ids, dropped = encode.encode_text(text, vocab)
        if dropped and strict:
            shown = ", ".join(repr(c) for c in encode.unknown_chars(text, vocab)[:10])
            raise UsageError(
                f"the text has characters outside the run's vocabulary: {shown} "
                "(without --strict they are counted and skipped)"
            )
        skipped += dropped
        if max_chars is not None:  # the first max_chars characters read, whatever is scored
            ids = ids[: max_chars - taken]
            taken += len(ids)
        if len(ids) >= 2:
            rows = eval_rows(ids)
            total.add(score(model, rows, dev))
            chars += characters_in(rows[:, 1:]) if kind == "bytes" else 0
        if max_chars is not None and taken >= max_chars:
            break
    if total.chars == 0:
        raise UsageError("the text has fewer than 2 characters the run knows: nothing to score")
    return total, chars, skipped


def figures(total: Score, chars: int, skipped: int, kind: str) -> dict[str, Any]:
    """What `charrnn eval` reports: characters, loss (nats), bits/char, perplexity, accuracy,
    skipped; a byte run's loss is per byte, and its bits/char spreads those bits over the
    `chars` characters its bytes make (bits_per_byte and bytes added)."""
    result = {
        "chars": total.chars, "loss": total.loss, "bits_per_char": total.bits_per_char,
        "perplexity": total.perplexity, "accuracy": total.accuracy, "skipped": skipped,
    }  # fmt: skip
    if kind == "bytes":
        per_char = total.loss_sum / LN2 / chars if chars else float("nan")
        result.update(bytes=total.chars, chars=chars, bits_per_byte=total.bits_per_char)
        result.update(bits_per_char=per_char)
    return result
