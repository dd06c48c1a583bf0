"""Where the time goes: a training step and a batched sampling step, piece by piece.

Training (`train_profile`): charrnn's own `Trainer` on Tiny Shakespeare (the default model and
`--preset cpu`), its step replicated here from the same functions with `time.perf_counter`
around each piece: the window copy, the restarts, the forward pass (loss included), the
backward pass (zeroing the gradients included), the clip, the optimizer step, and the metrics
(the schedule, the loss read back, the log). The real `Trainer.step` is timed over as many steps
in the same rounds; "rest" is what it spends beyond the pieces (negative: noise). Each in fp32
and, on a CPU with bf16 arithmetic, in the bf16 `--precision auto` picks there (forward under
autocast, as the trainer runs it).

Sampling (`sample_profile`): a default-size LSTM stepped by the CPU engine (`NumpyStreams`) at
1, 8, 64 and 256 streams, in ms a step, beside what its parts cost alone at the same sizes: the
matrix products (the floor: the faster of numpy's and torch's product at each shape, one
thread), the nonlinearities (tanh over every gate and over c, the cell's products, on
contiguous arrays), and the draw (scale, Gumbel noise, argmax, as the engine draws); "rest" is
the step beyond those: Python, the row lookup, copies, strided slices. From 32 streams an
LSTM's engine steps a lane a core (sampling/lanes.py), so its step can undercut the one-core
parts and "rest" goes negative.

Every figure is a median over rounds, so a neighbour's burst on a shared machine moves one
round, not the median. BENCH_PROFILE_STEPS sets the training steps a round (20).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits

from benchmarks.common import corpus, emit, scratch_home

TRAIN_PIECES = ("window", "restarts", "forward", "backward", "clip", "optimizer", "metrics")
SAMPLE_PIECES = ("matmul", "nonlinear", "draw")
STREAMS = (1, 8, 64, 256)
ROUNDS = 5


def _trainer(preset: str | None, precision: str = "auto"):
    from charrnn_cli import config
    from charrnn_cli.data import encode
    from charrnn_cli.training.distributed import Comm
    from charrnn_cli.training.job import CorpusInfo, Job
    from charrnn_cli.training.train import Trainer

    scratch_home()
    given = {"eval_every": 10**9, "save_every": 10**6, "epochs": 1000, "precision": precision}
    model_cfg, train_cfg = config.build(given, preset)
    data = encode.load(corpus())
    info = CorpusInfo("tinyshakespeare", str(corpus()), data.sha256, "bench")
    name = f"profile-{preset or 'default'}-{os.getpid()}"
    job = Job(name, model_cfg, train_cfg, data, info, preset=preset or "tutorial")
    trainer = Trainer(job, Comm())
    trainer.restore()
    trainer.start()
    return trainer


def _replica_step(tr, acc: dict[str, float]) -> None:
    """`Trainer.step` and `_forward_backward`, piece by piece (autocast as the trainer has it)."""
    from charrnn_cli.data import batches
    from charrnn_cli.model import detach
    from charrnn_cli.training.optim import lr_at

    s, tcfg, clock = tr.state, tr.tcfg, time.perf_counter
    t0 = clock()
    tr.lr = lr_at(tcfg, s.step, tr.total, s.elapsed())
    for group in tr.opt.param_groups:
        group["lr"] = tr.lr
    t1 = clock()
    x, y = batches.window(tr.shard.rows, s.cursor, tcfg.seq_len)
    t2 = clock()
    h_in = tr._restarts(detach(s.hidden))
    t3 = clock()
    with torch.autocast(tr.dev.type, dtype=tr.amp) if tr.amp else nullcontext():
        logits, s.hidden = tr.net(x, h_in)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
    t4 = clock()
    tr.opt.zero_grad(set_to_none=True)
    loss.backward()
    t5 = clock()
    norm = torch.nn.utils.clip_grad_norm_(tr.model.parameters(), tcfg.grad_clip or float("inf"))
    t6 = clock()
    value = loss.detach().item()
    finite = np.isfinite(value) and np.isfinite(float(norm))
    loss_sum, _ = tr.comm.sum(value if finite else 0.0, 0.0 if finite else 1.0)
    s.step += 1
    s.cursor += 1
    t7 = clock()
    tr.opt.step()
    t8 = clock()
    s.smooth = loss_sum if s.smooth is None else 0.95 * s.smooth + 0.05 * loss_sum
    for _ in tr._log(t0):
        pass
    t9 = clock()
    metrics = (t1 - t0) + (t7 - t6) + (t9 - t8)
    spans = (t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t8 - t7, metrics)
    for piece, dt in zip(TRAIN_PIECES, spans, strict=True):
        acc[piece] += dt


def train_profile(preset: str | None, steps: int, precision: str) -> dict[str, float]:
    """ms a step of each piece, the real step and the rest (medians over rounds)."""
    tr = _trainer(preset, precision)
    for _ in range(3):  # warm-up: allocator, oneDNN primitives
        for _ in tr.step(tr.state.elapsed()):
            pass
    rounds: dict[str, list[float]] = {k: [] for k in (*TRAIN_PIECES, "step")}
    for _ in range(ROUNDS):
        acc = dict.fromkeys(TRAIN_PIECES, 0.0)
        for _ in range(steps):
            _replica_step(tr, acc)
        start = time.perf_counter()
        for _ in range(steps):
            for _ in tr.step(tr.state.elapsed()):
                pass
        rounds["step"].append((time.perf_counter() - start) / steps * 1e3)
        for k, v in acc.items():
            rounds[k].append(v / steps * 1e3)
    tr.close()
    out = {k: statistics.median(v) for k, v in rounds.items()}
    out["rest"] = out["step"] - sum(out[k] for k in TRAIN_PIECES)
    return out


def _timed(fn: Callable[[], object], n: int) -> float:
    """Seconds a call, the median of ROUNDS rounds of n calls."""
    fn()
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - start) / n)
    return statistics.median(times)


def _matmul_floor(B: int, E: int, H: int, V: int, n: int) -> float:
    """The step's products alone: h x W_hh (layer 0; its input is a row lookup), [x, h] x W
    (the layers above), h x W_out; the faster of numpy and torch, one thread."""
    shapes = [(B, H, 4 * H), (B, 2 * H, 4 * H), (B, H, V)]
    arrays = [(np.random.rand(m, k).astype(np.float32), np.random.rand(k, o).astype(np.float32),
               np.empty((m, o), np.float32)) for m, k, o in shapes]  # fmt: skip
    tensors = [tuple(torch.from_numpy(a) for a in t) for t in arrays]

    def numpy_products() -> None:
        for a, w, out in arrays:
            np.dot(a, w, out=out)

    def torch_products() -> None:
        for a, w, out in tensors:
            torch.mm(a, w, out=out)

    return min(_timed(numpy_products, n), _timed(torch_products, n))


def _nonlinear_floor(B: int, H: int, layers: int, n: int) -> float:
    """The cell's elementwise work alone, on contiguous arrays: tanh over the four gates, the
    sigmoid gates' affine, f*c + i*g, o*tanh(c), for each layer."""
    g = np.random.rand(4, B, H).astype(np.float32)
    c, tmp, h = (np.random.rand(B, H).astype(np.float32) for _ in range(3))

    def cell() -> None:
        for _ in range(layers):
            np.tanh(g, out=g)
            np.multiply(g[:3], 0.5, out=g[:3])
            np.add(g[:3], 0.5, out=g[:3])
            np.multiply(c, g[1], out=c)
            np.multiply(g[0], g[3], out=tmp)
            np.add(c, tmp, out=c)
            np.tanh(c, out=h)
            np.multiply(h, g[2], out=h)

    return _timed(cell, n)


def _draw_cost(B: int, V: int, n: int) -> float:
    """Drawing as the engine draws: logits / T + Gumbel noise (a block at a time), argmax."""
    from charrnn_cli.sampling.strategy import Noise, stream_rngs

    noise = Noise(stream_rngs(0, B), V)
    logits, scored = np.random.rand(B, V).astype(np.float32), np.empty((B, V), np.float32)

    def draw() -> None:
        np.multiply(logits, 1.0, out=scored)
        np.add(scored, noise.next(), out=scored)
        scored.argmax(-1)

    return _timed(draw, n)


def sample_profile(B: int) -> dict[str, float]:
    """ms a step of the CPU engine at B streams, and of its parts alone."""
    from charrnn_cli.config import ModelConfig
    from charrnn_cli.model import CharRNN
    from charrnn_cli.sampling.start import prime
    from charrnn_cli.sampling.strategy import Strategy, stream_rngs
    from charrnn_cli.sampling.streams import make_streams

    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=65)
    model = CharRNN(cfg).eval()
    steps = max(40, 16_000 // B)
    with torch.inference_mode():
        start = prime(model, torch.tensor([[1, 2, 3]]))

    streams = make_streams(model, start, Strategy(1.0), stream_rngs(0, B))

    def engine() -> None:
        for _ in streams.run(steps):
            pass

    step = _timed(engine, 1) / steps
    n = max(20, 4000 // B)
    limit = threadpool_limits(1) if B > 1 else nullcontext()
    with limit, torch.inference_mode():
        parts = {
            "matmul": _matmul_floor(B, cfg.embed_size, cfg.hidden_size, cfg.vocab_size, n),
            "nonlinear": _nonlinear_floor(B, cfg.hidden_size, cfg.layers, n),
            "draw": _draw_cost(B, cfg.vocab_size, max(n, 1000)),  # several noise blocks
        }
    out = {k: v * 1e3 for k, v in parts.items()}
    out["step"] = step * 1e3
    out["rest"] = out["step"] - sum(parts.values()) * 1e3
    return out


def _shares(figures: dict[str, float], pieces: tuple[str, ...], digits: int) -> dict:
    step = figures["step"]
    row: dict = {"step_ms": round(step, digits)}
    for k in (*pieces, "rest"):
        row[f"{k}_ms"] = round(figures[k], digits)
        row[f"{k}_share"] = round(figures[k] / step, 3)
    return row


def run() -> None:
    steps = int(os.environ.get("BENCH_PROFILE_STEPS", 20))
    from charrnn_cli import device

    # fp32, and bf16 where `--precision auto` picks it (a CPU with AMX or AVX-512 BF16)
    precisions = ("fp32", "bf16") if device.native_bf16() else ("fp32",)
    for preset, precision in ((p, q) for p in (None, "cpu") for q in precisions):
        figures = train_profile(preset, steps, precision)
        emit(bench="profile_train", config=preset or "default", precision=precision,
             steps_a_round=steps,
             rounds=ROUNDS, threads=torch.get_num_threads(),
             **_shares(figures, TRAIN_PIECES, 2))  # fmt: skip
    one = None
    for B in STREAMS:
        figures = sample_profile(B)
        chars_per_sec = B / figures["step"] * 1e3
        one = one or chars_per_sec
        emit(bench="profile_sample", streams=B, chars_per_sec=round(chars_per_sec),
             ratio_vs_one_stream=round(chars_per_sec / one, 2),
             **_shares(figures, SAMPLE_PIECES, 4))  # fmt: skip
