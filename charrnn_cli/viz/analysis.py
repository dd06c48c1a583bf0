"""What `charrnn viz` shows, computed from a run: each character's surprisal and top guesses,
units ranked by how well they track a signal, one unit's activation along the text, and how
often each gate saturates.

The text is laid out exactly as `charrnn eval --corpus` scores it (characters outside the
vocabulary dropped, `eval_rows` streams, state carried), so the mean surprisal equals eval's
bits per character. Each character keeps its position in the original text, so the pictures
show the text as given; a character that starts a stream (nothing before it to predict from) or
that the run does not know has no surprisal. Results are numpy arrays indexed by the position in
the text; the commands turn them into terminal output, JSON or a page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from charrnn_cli.data import encode
from charrnn_cli.errors import CharrnnError, UsageError
from charrnn_cli.evaluate import eval_rows
from charrnn_cli.model import CharRNN
from charrnn_cli.viz.activations import SIGMOID_GATES, trace

LN2 = math.log(2)
SATURATED = 0.9  # |activation| above this counts as saturated
GATE_LOW, GATE_HIGH = 0.1, 0.9  # a gate below/above these is left/right saturated


@dataclass
class Layout:
    """The text and the streams it is read as."""

    text: str
    ids: np.ndarray  # (R, P) character ids, as eval reads them
    index: np.ndarray  # (R, P) the position in `text` of each of those characters


@dataclass
class Surprise:
    bits: np.ndarray  # (N,) -log2 p of each character of the text; NaN where not scored
    top_ids: np.ndarray  # (N, K) the K likeliest characters at each position, likeliest first
    top_p: np.ndarray  # (N, K) their probabilities

    @property
    def scored(self) -> int:
        return int(np.isfinite(self.bits).sum())

    @property
    def mean(self) -> float:
        return float(np.nansum(self.bits) / self.scored) if self.scored else float("nan")


@dataclass(frozen=True)
class Rank:
    layer: int  # 1 = the layer next to the embedding
    unit: int  # index into the layer's state vector, from 0
    r: float  # Pearson correlation of the unit's activation with the signal
    saturated: float  # share of characters where |activation| > SATURATED


@dataclass(frozen=True)
class GateSaturation:
    layer: int
    gate: str
    low: np.ndarray  # (H,) share of characters each unit's gate is below GATE_LOW
    high: np.ndarray  # (H,) ... above GATE_HIGH


def layout(text: str, vocab: str) -> Layout:
    """The text as eval's streams, keeping each character's place in the text."""
    known = set(vocab)
    positions = np.fromiter((i for i, c in enumerate(text) if c in known), dtype=np.int64)
    ids, _ = encode.encode_text(text, vocab)
    if len(ids) < 2:
        raise UsageError("the text has fewer than 2 characters the run knows: nothing to show")
    return Layout(text, eval_rows(ids), eval_rows(positions))


def surprise(model: CharRNN, lay: Layout, top_k: int = 5) -> Surprise:
    """Each character's surprisal in bits and the model's top guesses for it."""
    n, k = len(lay.text), min(top_k, model.cfg.vocab_size)
    out = Surprise(np.full(n, np.nan), np.zeros((n, k), np.int64), np.zeros((n, k), np.float32))
    for w in trace(model, lay.ids, state="h"):
        t = w.logits.shape[1]
        target = lay.ids[:, w.start + 1 : w.start + 1 + t]  # (R, t'): what each column predicts
        if target.shape[1] == 0:
            continue
        logp = torch.log_softmax(w.logits[:, : target.shape[1]].float(), dim=-1)  # (R, t', V)
        tgt = torch.from_numpy(target.astype(np.int64)).to(logp.device)
        bits = -logp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1) / LN2  # (R, t')
        top_lp, top_ids = logp.topk(k, dim=-1)  # (R, t', K)
        where = lay.index[:, w.start + 1 : w.start + 1 + target.shape[1]].reshape(-1)
        out.bits[where] = bits.reshape(-1).double().cpu().numpy()
        out.top_ids[where] = top_ids.reshape(-1, k).cpu().numpy()
        out.top_p[where] = top_lp.exp().reshape(-1, k).cpu().numpy()
    return out


def _check_layer(model: CharRNN, layer: int) -> None:
    if not 1 <= layer <= model.cfg.layers:
        raise UsageError(f"--layer must be 1 to {model.cfg.layers} for this run, got {layer}")


def rank_units(
    model: CharRNN, lay: Layout, signals: dict[str, list[float]], state: str = "c"
) -> dict[str, list[Rank]]:
    """For each signal, every unit of every layer ranked by |r| of its activation with the
    signal over the text, highest first; a signal that is constant over the text (no quotes
    in it, say) has no correlation and is left out. One pass; sums kept in float64 so memory
    stays bounded by one window whatever the text's length."""
    names = list(signals)
    sig = np.stack([np.asarray(signals[s], dtype=np.float64)[lay.index] for s in names])  # (S,R,P)
    layers, hidden = model.cfg.layers, model.cfg.hidden_size
    n = 0
    sum_a, sum_aa, sat = (np.zeros((layers, hidden)) for _ in range(3))
    sum_sa = np.zeros((layers, len(names), hidden))
    for w in trace(model, lay.ids, state=state):
        t = w.states[0].shape[1]
        s = sig[:, :, w.start : w.start + t].reshape(len(names), -1)  # (S, R*t)
        n += s.shape[1]
        for k, a in enumerate(w.states):
            a = a.reshape(-1, hidden).double().cpu().numpy()  # (R*t, H)
            sum_a[k] += a.sum(0)
            sum_aa[k] += (a * a).sum(0)
            sat[k] += (np.abs(a) > SATURATED).sum(0)
            sum_sa[k] += s @ a
    mean_a = sum_a / n
    var_a = np.maximum(sum_aa / n - mean_a**2, 0.0)  # (L, H)
    result = {}
    for j, name in enumerate(names):
        s = sig[j].reshape(-1)
        var_s = float(s.var())
        if var_s <= 1e-12:
            continue
        cov = sum_sa[:, j] / n - mean_a * float(s.mean())
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(var_a > 1e-12, cov / np.sqrt(var_a * var_s), 0.0)
        r = np.clip(r, -1.0, 1.0)
        order = np.argsort(-np.abs(r), axis=None, kind="stable")
        result[name] = [
            Rank(int(i // hidden) + 1, int(i % hidden), float(r.flat[i]), float(sat.flat[i] / n))
            for i in order
        ]
    return result


def unit_traces(
    model: CharRNN, lay: Layout, units: list[tuple[int, int]], state: str = "c"
) -> np.ndarray:
    """(U, N) activation of each (layer, unit) after each character of the text; NaN for the
    characters the run does not know (and the few at the end that eval leaves out)."""
    for layer, unit in units:
        _check_layer(model, layer)
        if not 0 <= unit < model.cfg.hidden_size:
            raise UsageError(
                f"--unit must be 0 to {model.cfg.hidden_size - 1} for this run, got {unit}"
            )
    out = np.full((len(units), len(lay.text)), np.nan, dtype=np.float32)
    for w in trace(model, lay.ids, state=state):
        t = w.states[0].shape[1]
        where = lay.index[:, w.start : w.start + t].reshape(-1)
        for j, (layer, unit) in enumerate(units):
            out[j, where] = w.states[layer - 1][:, :, unit].reshape(-1).float().cpu().numpy()
    return out


def gate_saturation(model: CharRNN, lay: Layout) -> list[GateSaturation]:
    """For each sigmoid gate of each layer, how often each unit's gate is nearly shut (< 0.1)
    and nearly open (> 0.9): the saturation picture of Karpathy et al. (2015)."""
    names = SIGMOID_GATES.get(model.cfg.cell)
    if names is None:
        raise UsageError("a plain RNN has no gates: `viz gates` needs an LSTM or GRU run")
    hidden, n = model.cfg.hidden_size, 0
    low = {(k, g): np.zeros(hidden) for k in range(model.cfg.layers) for g in names}
    high = {key: np.zeros(hidden) for key in low}
    for w in trace(model, lay.ids, state="h", gates=True):
        n += w.logits.shape[0] * w.logits.shape[1]
        for k, per_gate in enumerate(w.gates):
            for g in names:
                v = per_gate[g].reshape(-1, hidden)
                low[k, g] += (v < GATE_LOW).sum(0).double().cpu().numpy()
                high[k, g] += (v > GATE_HIGH).sum(0).double().cpu().numpy()
    return [GateSaturation(k + 1, g, low[k, g] / n, high[k, g] / n) for (k, g) in low]


def decode(ids: np.ndarray, vocab: str) -> str:
    return "".join(vocab[i] for i in ids.tolist())


def held_out_text(name: str, data: dict, vocab: str, max_chars: int) -> str:
    """The first `max_chars` characters of the run's held-out tail."""
    from charrnn_cli import corpora
    from charrnn_cli.data.idmaps import remap_ids
    from charrnn_cli.data.split import split
    from charrnn_cli.storage import store
    from charrnn_cli.storage.checkpoint import configs

    _, tcfg = configs(data)
    cf = corpora.stored(store.read_config(name).get("corpus", {}))
    enc = encode.load(cf.path, cf.sha256)
    _, val_ids = split(enc.ids, tcfg.val_fraction)
    try:  # a fine-tuned run's vocabulary extends its corpus's: move the ids onto it
        val_ids = remap_ids(val_ids[:max_chars], enc.vocab, vocab)
    except CharrnnError:
        raise CharrnnError(f"the corpus of run {name!r} no longer matches its vocabulary") from None
    return decode(val_ids, vocab)
