"""The cell equations in numpy for a batch of B streams, one character a step (float32).

Sampling on the CPU is latency-bound: a module call per character costs more than the
arithmetic. These steppers take the weights out of the model once, fold the first layer's input
projection into a table (embedding x W_ih, biases included: a row lookup per character) and run
each layer as one matrix product over a (B, H) state into preallocated buffers. One stream
(B = 1) is the single-stream sampler; B streams turn matrix-vector products into matrix-matrix
ones, which is where several streams a step pay off (the LSTM steps several streams with
torch's products and in-place ops on views of the same buffers: see `LstmStepper.step`).
Every stream has its own state; a stream can be put back to the start state alone
(`restart`), which is how `--lines` begins each new line. A stepper of `batch` rows can also
step only its first n (`step` with n ids), take a stream's state into one row (`put`) and move
a row (`move`): how the server's pool lets streams come and go.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from charrnn_cli.model import CharRNN, State


@dataclass
class _Rows:
    """Torch views of an LstmStepper's buffers for a step of its first n rows: per layer
    (gates, sigmoid gates, f, i, o, g, c, own h, [h below, own h]), where each layer's h goes
    up (None for the last), and the weights."""

    layers: list[tuple]
    up: list[torch.Tensor | None]
    h0: torch.Tensor
    table: torch.Tensor
    w0: torch.Tensor
    w: list[torch.Tensor | None]
    b: list[torch.Tensor]
    w_out: torch.Tensor
    b_out: torch.Tensor
    half: torch.Tensor
    h_last: torch.Tensor
    logits: torch.Tensor
    logits_np: np.ndarray


def _numpy_weights(model: CharRNN) -> dict[str, np.ndarray]:
    return {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}


def _rows(t: torch.Tensor) -> list[np.ndarray]:
    """(L, B0, H) torch -> per layer (B0, H) float32 numpy."""
    return list(t.detach().float().cpu().numpy())


class _Stepper:
    """What both steppers share: the state every stream starts from and can be put back to
    (given by the caller: the steppers never decide where a sample starts)."""

    batch: int
    _start: list[np.ndarray]

    def _state(self) -> list[np.ndarray]:  # the arrays that hold the streams' state
        raise NotImplementedError

    def _load(self, h: State, rows: slice = slice(None)) -> None:
        raise NotImplementedError

    def start_from(self, h: State) -> None:
        """Put every stream at `h` ((L, 1, H) for all alike, or (L, B, H) one row each) and
        remember it as the state `restart` returns streams to."""
        self._load(h)
        self._start = [a.copy() for a in self._state()]

    def restart(self, rows: np.ndarray) -> None:
        """Put the streams where `rows` (B,) is True back to the start state."""
        for a, s in zip(self._state(), self._start, strict=True):
            np.copyto(a, s, where=rows[:, None])

    def put(self, row: int, h: State) -> None:
        """Put one stream's state `h` ((L, 1, H)) into `row`; the other rows keep theirs."""
        self._load(h, slice(row, row + 1))

    def move(self, src: int, dst: int) -> None:
        """Copy row `src`'s state into row `dst` (packing the rows in use to the front)."""
        for a in self._state():
            a[dst] = a[src]


class GruRnnStepper(_Stepper):
    """The GRU's and the tanh RNN's equations (the LSTM has its own stepper below)."""

    def __init__(self, model: CharRNN, h: State, batch: int = 1) -> None:
        cfg = model.cfg
        self.cell, self.L, self.H, self.batch = cfg.cell, cfg.layers, cfg.hidden_size, batch
        sd = _numpy_weights(model)
        self.w_hh = [np.ascontiguousarray(sd[f"rnn.weight_hh_l{i}"].T) for i in range(self.L)]
        self.w_ih = [np.ascontiguousarray(sd[f"rnn.weight_ih_l{i}"].T) for i in range(self.L)]
        self.b_ih = [sd[f"rnn.bias_ih_l{i}"] for i in range(self.L)]
        self.b_hh = [sd[f"rnn.bias_hh_l{i}"] for i in range(self.L)]
        # layer 0's input projection of every character, biases folded in: (V, G*H)
        self.table = sd["embed.weight"] @ self.w_ih[0] + self.b_ih[0]
        if self.cell != "gru":  # the GRU keeps b_hh apart: it sits inside r * (W_hn h + b_hn)
            self.table += self.b_hh[0]
        self.w_out = np.ascontiguousarray(sd["head.weight"].T)  # (H, V)
        self.b_out = sd["head.bias"]
        self.h = [np.empty((batch, self.H), np.float32) for _ in range(self.L)]
        self.start_from(h)

    def _state(self) -> list[np.ndarray]:
        return self.h

    def _load(self, h: State, rows: slice = slice(None)) -> None:
        for mine, given in zip(self.h, _rows(h), strict=True):  # h: (L, B0, H)
            mine[rows] = given

    def step(self, ids: np.ndarray) -> np.ndarray:
        """Feed one character id per stream (B,), or per stream of the first n rows (n,);
        return the next logits (B or n, V)."""
        H, rows = self.H, len(ids)
        x = None
        for i in range(self.L):
            g = self.table[ids] if i == 0 else x @ self.w_ih[i] + self.b_ih[i]  # (n, G*H)
            h = self.h[i] if rows == self.batch else self.h[i][:rows]
            if self.cell == "gru":
                gh = h @ self.w_hh[i] + self.b_hh[i]
                rz = 1.0 / (1.0 + np.exp(-(g[:, : 2 * H] + gh[:, : 2 * H])))
                n = np.tanh(g[:, 2 * H :] + rz[:, :H] * gh[:, 2 * H :])
                h = n + rz[:, H:] * (h - n)
            else:
                g = g + h @ self.w_hh[i]
                if i:
                    g += self.b_hh[i]
                h = np.tanh(g)
            if rows == self.batch:
                self.h[i] = h
            else:
                self.h[i][:rows] = h
            x = h
        return x @ self.w_out + self.b_out


class LstmStepper(_Stepper):
    """The LSTM's equations with every buffer preallocated.

    Gates are reordered to (i, f, o, g) and the sigmoid gates' weights halved, so one tanh
    over all four gates gives tanh(x/2) for i, f, o (and sigmoid(x) = tanh(x/2)/2 + 1/2) and
    tanh(x) for g. Layers above the first read [h_below, h_own] against stacked weights, so
    a layer costs one matrix product; the first layer's input projection is a table.
    """

    def __init__(self, model: CharRNN, h: State, batch: int = 1) -> None:
        cfg = model.cfg
        self.L, H, self.batch = cfg.layers, cfg.hidden_size, batch
        self.H = H
        sd = _numpy_weights(model)
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
        B = batch
        # xh[i] = [h of layer i-1, h of layer i] (B, 2H) for i >= 1; h0 (B, H) for the first
        self.h0 = np.empty((B, H), np.float32)
        self.xh = [None] + [np.empty((B, 2 * H), np.float32) for _ in range(1, self.L)]
        self.c = [np.empty((B, H), np.float32) for _ in range(self.L)]
        self.g = [np.empty((B, 4 * H), np.float32) for _ in range(self.L)]
        self.tmp = np.empty((B, H), np.float32)
        self.logits = np.empty((B, self.w_out.shape[1]), np.float32)
        # one stream: 1-D views of the same buffers take numpy's vector paths, a third less
        # time a character than (1, H) matrices (the single-stream sampler's whole cost)
        self.one = [(g[0], c[0], x[0] if x is not None else self.h0[0])
                    for g, c, x in zip(self.g, self.c, self.xh, strict=True)]  # fmt: skip
        self._views: dict[int, _Rows] = {}  # torch views of the first n rows, made once per n
        self.start_from(h)

    def _own_h(self, i: int) -> np.ndarray:
        return self.h0 if i == 0 else self.xh[i][:, self.H :]

    def _state(self) -> list[np.ndarray]:
        return [self.h0, *self.xh[1:], *self.c]

    def _load(self, h: State, rows: slice = slice(None)) -> None:
        hs, cs = h  # (L, B0, H) each
        for i, (hi, ci) in enumerate(zip(_rows(hs), _rows(cs), strict=True)):
            self._own_h(i)[rows] = hi
            self.c[i][rows] = ci
            if i + 1 < self.L:
                self.xh[i + 1][rows, : self.H] = hi

    def step(self, ids: np.ndarray) -> np.ndarray:
        """Feed one character id per stream (B,), or per stream of the first n rows (n,);
        return the next logits (B or n, V), a buffer that the next step overwrites.

        Several streams step in torch, on views of the same buffers: MKL's products are a
        fifth faster than numpy's OpenBLAS at these sizes, and torch's in-place ops walk the
        gates' column slices of a (n, 4H) array at full speed where numpy's ufuncs go a row
        at a time (a 64-stream step took 1.6x the time). Callers bound the threads."""
        n = len(ids)
        if n == 1:
            return self._step_one(int(ids[0]))
        v = self._views.get(n) or self._rows(n)
        for i, (g, sig, f, inp, o, gate, c, h, below) in enumerate(v.layers):
            if i == 0:
                torch.index_select(v.table, 0, torch.from_numpy(ids), out=g)
                g.addmm_(v.h0, v.w0)
            else:
                torch.addmm(v.b[i], below, v.w[i], out=g)
            g.tanh_()
            torch.add(v.half, sig, alpha=0.5, out=sig)  # sigmoid = tanh(x/2)/2 + 1/2
            c.mul_(f).addcmul_(inp, gate)
            torch.tanh(c, out=h)
            h.mul_(o)
            if v.up[i] is not None:
                v.up[i].copy_(h)
        torch.addmm(v.b_out, v.h_last, v.w_out, out=v.logits)
        return v.logits_np

    def _rows(self, n: int) -> _Rows:
        """The torch views a step of the first n rows works on."""
        H, t = self.H, torch.from_numpy
        layers, up = [], []
        for i in range(self.L):
            g = t(self.g[i])[:n]
            below = t(self.xh[i])[:n] if i else None
            gates = (g[:, : 3 * H], g[:, H : 2 * H], g[:, :H], g[:, 2 * H : 3 * H], g[:, 3 * H :])
            layers.append((g, *gates, t(self.c[i])[:n], t(self._own_h(i))[:n], below))
            up.append(t(self.xh[i + 1])[:n, :H] if i + 1 < self.L else None)
        v = self._views[n] = _Rows(
            layers=layers, up=up, h0=t(self.h0)[:n], table=t(self.table), w0=t(self.w0),
            w=[None, *(t(w) for w in self.w[1:])], b=[t(b) for b in self.b],
            w_out=t(self.w_out), b_out=t(self.b_out), half=torch.tensor(0.5),
            h_last=t(self._own_h(self.L - 1))[:n], logits=t(self.logits)[:n],
            logits_np=self.logits[:n],
        )  # fmt: skip
        return v

    def _step_one(self, idx: int) -> np.ndarray:
        """`step` for one stream, on 1-D views (xh is the layer's [h below, own h], or for
        the first layer its own h alone)."""
        H, tmp = self.H, self.tmp[0]
        for i, (g, c, xh) in enumerate(self.one):
            if i == 0:
                np.dot(xh, self.w0, out=g)
                g += self.table[idx]
            else:
                np.dot(xh, self.w[i], out=g)
                g += self.b[i]
            np.tanh(g, out=g)
            sig = g[: 3 * H]
            sig *= 0.5
            sig += 0.5
            c *= g[H : 2 * H]  # f * c
            np.multiply(g[:H], g[3 * H :], out=tmp)  # i * g
            c += tmp
            h = xh if i == 0 else xh[H:]
            np.tanh(c, out=h)
            h *= g[2 * H : 3 * H]  # o * tanh(c)
            if i + 1 < self.L:
                self.one[i + 1][2][:H] = h
        np.dot(self._own_h(self.L - 1)[0], self.w_out, out=self.logits[0])
        logits = self.logits[:1]
        logits += self.b_out
        return logits


def make_stepper(model: CharRNN, h: State, batch: int = 1) -> GruRnnStepper | LstmStepper:
    """The numpy stepper for the model's cell: `batch` streams that start at `h`."""
    kind = LstmStepper if model.cfg.cell == "lstm" else GruRnnStepper
    return kind(model, h, batch)
