"""Generating text: prime with the seed, then draw one character at a time, state carried.

The tutorial's sampler lost the hidden state between characters; here the seed is fed through
the model in one call and every drawn character is fed back with the state it left. Two
engines do the stepping:

- on the CPU, `CpuStepper` runs the cell equations in numpy on weights extracted once: the
  first layer's input projection is a table lookup (embedding x W_ih folded together), buffers
  are preallocated, and a character costs a few dozen tiny array operations, not a module call;
- on a GPU, `TorchStepper` calls the model on the device and keeps the drawn ids there, so the
  host waits only once per chunk of characters.

Sampling uses the Gumbel-max trick (argmax of logits / T plus Gumbel noise drawn in blocks),
which draws exactly from softmax(logits / T); top-k and top-p mask the logits first.
`beam_search` returns the most likely continuation of a given length instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from charrnn_cli.model import CharRNN, State

NOISE_BLOCK = 1024  # Gumbel noise rows drawn at once


@dataclass
class Strategy:
    temperature: float = 1.0  # 0 means greedy
    top_k: int | None = None  # keep only the k most likely characters
    top_p: float | None = None  # keep the smallest set whose probability reaches p

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def _filter(logits: np.ndarray, s: Strategy) -> np.ndarray:
    """Mask out what top-k / top-p exclude (returns a new array when masking)."""
    if s.top_k is not None and s.top_k < logits.shape[-1]:
        cut = np.partition(logits, -s.top_k)[-s.top_k]
        logits = np.where(logits < cut, -np.inf, logits)
    if s.top_p is not None and s.top_p < 1.0:
        order = np.argsort(-logits)
        z = logits[order] / max(s.temperature, 1e-6)
        p = np.exp(z - z[0])
        p /= p.sum()
        keep = int(np.searchsorted(np.cumsum(p), s.top_p)) + 1
        masked = np.full_like(logits, -np.inf)
        masked[order[:keep]] = logits[order[:keep]]
        logits = masked
    return logits


class CpuStepper:
    """The GRU's and the tanh RNN's equations in numpy, one character at a time (float32);
    the LSTM has its own faster stepper below."""

    def __init__(self, model: CharRNN) -> None:
        cfg = model.cfg
        self.cell, self.L, self.H = cfg.cell, cfg.layers, cfg.hidden_size
        sd = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
        emb = sd["embed.weight"]  # (V, E)
        self.w_hh = [np.ascontiguousarray(sd[f"rnn.weight_hh_l{i}"].T) for i in range(self.L)]
        self.w_ih = [np.ascontiguousarray(sd[f"rnn.weight_ih_l{i}"].T) for i in range(self.L)]
        self.b_ih = [sd[f"rnn.bias_ih_l{i}"] for i in range(self.L)]
        self.b_hh = [sd[f"rnn.bias_hh_l{i}"] for i in range(self.L)]
        # layer 0's input projection of every character, biases folded in: (V, G*H)
        self.table = emb @ self.w_ih[0] + self.b_ih[0]
        if self.cell != "gru":  # GRU keeps b_hh apart (it sits inside r * (...))
            self.table += self.b_hh[0]
        self.w_out = np.ascontiguousarray(sd["head.weight"].T)  # (H, V)
        self.b_out = sd["head.bias"]
        self.h = [np.zeros(self.H, np.float32) for _ in range(self.L)]

    def load_state(self, h: State) -> None:
        for i in range(self.L):  # h: (L, 1, H)
            self.h[i] = h[i, 0].float().cpu().numpy().copy()

    def step(self, idx: int) -> np.ndarray:
        """Feed one character id; return the next character's logits (V,)."""
        H = self.H
        x = None
        for i in range(self.L):
            g = self.table[idx] if i == 0 else x @ self.w_ih[i] + self.b_ih[i]
            h = self.h[i]
            if self.cell == "gru":
                gh = h @ self.w_hh[i] + self.b_hh[i]
                rz = 1.0 / (1.0 + np.exp(-(g[: 2 * H] + gh[: 2 * H])))
                n = np.tanh(g[2 * H :] + rz[:H] * gh[2 * H :])
                h = n + rz[H:] * (h - n)
            else:
                g = g + h @ self.w_hh[i]
                if i:
                    g += self.b_hh[i]
                h = np.tanh(g)
            self.h[i] = h
            x = h
        return x @ self.w_out + self.b_out


class LstmStepper:
    """The LSTM's equations in numpy with every buffer preallocated (float32).

    Gates are reordered to (i, f, o, g) and the sigmoid gates' weights halved, so one tanh
    over all four gates gives tanh(x/2) for i, f, o (and sigmoid(x) = tanh(x/2)/2 + 1/2) and
    tanh(x) for g. Layers above the first read [h_below, h_own] against stacked weights, so
    a layer costs one matrix-vector product; the first layer's input projection is a table.
    """

    def __init__(self, model: CharRNN) -> None:
        cfg = model.cfg
        self.L, H = cfg.layers, cfg.hidden_size
        self.H = H
        sd = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
        order = np.r_[0 : 2 * H, 3 * H : 4 * H, 2 * H : 3 * H]  # (i, f, g, o) -> (i, f, o, g)
        scale = np.ones(4 * H, np.float32)
        scale[: 3 * H] = 0.5

        def cols(w: np.ndarray) -> np.ndarray:  # (4H, n) torch layout -> (n, 4H), reordered
            return np.ascontiguousarray(w[order].T * scale, dtype=np.float32)

        bias = [
            (sd[f"rnn.bias_ih_l{i}"] + sd[f"rnn.bias_hh_l{i}"])[order] * scale
            for i in range(self.L)
        ]
        self.table = sd["embed.weight"] @ cols(sd["rnn.weight_ih_l0"]) + bias[0]  # (V, 4H)
        self.w0 = cols(sd["rnn.weight_hh_l0"])  # (H, 4H)
        self.w = [None] + [
            np.vstack([cols(sd[f"rnn.weight_ih_l{i}"]), cols(sd[f"rnn.weight_hh_l{i}"])])
            for i in range(1, self.L)
        ]  # (2H, 4H) for the layers above the first
        self.b = bias
        self.w_out = np.ascontiguousarray(sd["head.weight"].T)  # (H, V)
        self.b_out = sd["head.bias"].copy()
        # xh[i] = [h of layer i-1, h of layer i] for i >= 1; h0 alone for the first layer
        self.h0 = np.zeros(H, np.float32)
        self.xh = [None] + [np.zeros(2 * H, np.float32) for _ in range(1, self.L)]
        self.c = [np.zeros(H, np.float32) for _ in range(self.L)]
        self.g = [np.empty(4 * H, np.float32) for _ in range(self.L)]
        self.tmp = np.empty(H, np.float32)
        self.logits = np.empty(self.w_out.shape[1], np.float32)

    def _own_h(self, i: int) -> np.ndarray:
        return self.h0 if i == 0 else self.xh[i][self.H :]

    def load_state(self, h: State) -> None:
        hs, cs = h  # (L, 1, H) each
        for i in range(self.L):
            self._own_h(i)[:] = hs[i, 0].float().cpu().numpy()
            self.c[i][:] = cs[i, 0].float().cpu().numpy()
            if i + 1 < self.L:
                self.xh[i + 1][: self.H] = self._own_h(i)

    def step(self, idx: int) -> np.ndarray:
        """Feed one character id; return the next character's logits (V,)."""
        H = self.H
        for i in range(self.L):
            g = self.g[i]
            if i == 0:
                np.dot(self.h0, self.w0, out=g)
                g += self.table[idx]
            else:
                np.dot(self.xh[i], self.w[i], out=g)
                g += self.b[i]
            np.tanh(g, out=g)
            sig = g[: 3 * H]
            sig *= 0.5
            sig += 0.5
            c = self.c[i]
            c *= g[H : 2 * H]  # f * c
            np.multiply(g[:H], g[3 * H :], out=self.tmp)  # i * g
            c += self.tmp
            h = self._own_h(i)
            np.tanh(c, out=h)
            h *= g[2 * H : 3 * H]  # o * tanh(c)
            if i + 1 < self.L:
                self.xh[i + 1][:H] = h
        np.dot(self._own_h(self.L - 1), self.w_out, out=self.logits)
        self.logits += self.b_out
        return self.logits


def make_stepper(model: CharRNN) -> CpuStepper | LstmStepper:
    """The fastest CPU stepper for the model's cell."""
    return LstmStepper(model) if model.cfg.cell == "lstm" else CpuStepper(model)


def _prime(model: CharRNN, ids: list[int], device: torch.device) -> tuple[torch.Tensor, State]:
    """Feed the seed in one call; the logits after its last character and the state."""
    x = torch.tensor([ids], dtype=torch.long, device=device)  # (1, S)
    logits, h = model(x)
    return logits[0, -1].float(), h


@torch.inference_mode()
def sample(
    model: CharRNN,
    vocab: str,
    seed_ids: list[int],
    length: int | None,
    strategy: Strategy,
    *,
    random_seed: int | None = None,
    unigram: list[int] | None = None,
    device: torch.device | None = None,
) -> Iterator[str]:
    """Yield `length` characters (forever when None) that follow the seed ids.

    Without a seed, the first character is drawn from the corpus's character frequencies
    (`unigram`; uniform when unknown) and counts towards `length`.
    """
    device = device or next(model.parameters()).device
    model.eval()
    rng = np.random.default_rng(random_seed)
    V = len(vocab)
    produced = 0
    if not seed_ids:
        freq = np.asarray(unigram if unigram else [1] * V, dtype=np.float64)
        first = int(rng.choice(V, p=freq / freq.sum()))
        yield vocab[first]
        produced += 1
        seed_ids = [first]
    if length is not None and produced >= length:
        return
    last_logits, h = _prime(model, seed_ids, device)
    if device.type == "cpu":
        yield from _sample_cpu(model, vocab, last_logits, h, length, produced, strategy, rng)
    else:
        yield from _sample_torch(model, vocab, last_logits, h, length, produced, strategy, rng)


def _sample_cpu(model, vocab, logits_t, h, length, produced, s: Strategy, rng) -> Iterator[str]:
    stepper = make_stepper(model)
    stepper.load_state(h)
    logits = logits_t.numpy()
    inv_t = 1.0 / s.temperature if not s.greedy else 0.0
    masking = s.top_k is not None or s.top_p is not None
    noise = np.empty((0, len(vocab)), np.float32)
    scored = np.empty(len(vocab), np.float32)
    row = 0
    while length is None or produced < length:
        if masking:
            logits = _filter(logits, s)
        if s.greedy:
            idx = int(np.argmax(logits))
        else:
            if row == len(noise):
                noise, row = rng.gumbel(size=(NOISE_BLOCK, len(vocab))).astype(np.float32), 0
            np.multiply(logits, inv_t, out=scored)
            scored += noise[row]
            idx = int(np.argmax(scored))
            row += 1
        yield vocab[idx]
        produced += 1
        if length is not None and produced >= length:
            return
        logits = stepper.step(idx)


def _sample_torch(model, vocab, logits, h, length, produced, s: Strategy, rng) -> Iterator[str]:
    """GPU path: ids stay on the device; the host syncs once per chunk."""
    device = logits.device
    gen = torch.Generator(device=device)
    gen.manual_seed(int(rng.integers(2**62)))
    chunk = 256
    buf = torch.empty(chunk, dtype=torch.long, device=device)
    while length is None or produced < length:
        n = chunk if length is None else min(chunk, length - produced)
        for j in range(n):
            if s.top_k is not None or s.top_p is not None:
                masked = _filter(logits.float().cpu().numpy(), s)
                logits = torch.from_numpy(masked).to(device)
            if s.greedy:
                nxt = logits.argmax()
            else:
                probs = torch.softmax(logits.float() / s.temperature, dim=-1)
                nxt = torch.multinomial(probs, 1, generator=gen)[0]
            buf[j] = nxt
            out, h = model(nxt.view(1, 1), h)
            logits = out[0, -1]
        for i in buf[:n].tolist():
            yield vocab[i]
        produced += n


@torch.inference_mode()
def beam_search(model: CharRNN, vocab: str, seed_ids: list[int], length: int, width: int) -> str:
    """The most likely continuation of `length` characters, by beam search over `width` beams."""
    device = next(model.parameters()).device
    model.eval()
    if not seed_ids:
        raise ValueError("beam search needs a seed")
    logits, h = _prime(model, seed_ids, device)
    logp = torch.log_softmax(logits.float(), -1)[None]  # (1, V)
    scores = torch.zeros(1, device=device)  # (W,)
    tokens = torch.empty(1, 0, dtype=torch.long, device=device)  # (W, t)
    V = len(vocab)
    for _ in range(length):
        cand = (scores[:, None] + logp).reshape(-1)  # (W*V,)
        top = torch.topk(cand, min(width, cand.numel()))
        beam, tok = top.indices // V, top.indices % V
        scores = top.values
        tokens = torch.cat([tokens[beam], tok[:, None]], dim=1)
        h = tuple(t[:, beam] for t in h) if isinstance(h, tuple) else h[:, beam]
        out, h = model(tok[:, None], h)  # (W, 1, V)
        logp = torch.log_softmax(out[:, -1].float(), -1)
    best = int(torch.argmax(scores))
    return "".join(vocab[i] for i in tokens[best].tolist())
