"""Training throughput: characters per second at the default and a large configuration,
beside the tutorial port and beside the GEMM ceiling of this machine.

The ceiling: model FLOPs per character (forward x 3 for forward and backward) against the
GFLOP/s of a 2048^3 fp32 matrix product measured here (the faster of torch's matmul and
oneDNN's GEMM), and against an LSTM-sized product (batch x 4H); the fraction of it reached says
how much of the CPU the recurrent kernels use.
"""

from __future__ import annotations

import statistics
import time

import torch

from benchmarks import reference
from benchmarks.common import corpus, emit, train_records
from charrnn_cli.config import ModelConfig

CONFIGS = {
    "default": {},
    "large": {"hidden_size": 512, "batch_size": 64, "seq_len": 64},
}


def gemm_gflops(m: int, k: int, n: int, seconds: float = 2.0, onednn: bool = False) -> float:
    """fp32 GFLOP/s of an (m, k) x (k, n) product: torch's matmul, or oneDNN's (which the
    recurrent kernels use; on AMD CPUs MKL's matmul reaches only about half of it)."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    if onednn:
        am, wm = a.to_mkldnn(), b.t().contiguous().to_mkldnn()

        def product() -> object:
            return torch._C._nn.mkldnn_linear(am, wm, None)
    else:

        def product() -> object:
            return a @ b

    for _ in range(3):
        product()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        product()
        count += 1
    return 2 * m * k * n * count / (time.perf_counter() - start) / 1e9


def charrnn_cps(given: dict, seconds: float) -> float:
    """Median chars/s of charrnn's real loop over `seconds`, after a short warm-up."""
    rates, start = [], time.perf_counter()
    for rec in train_records({**given, "eval_every": 10**9, "max_steps": 10**9, "epochs": 1000}):
        if rec.kind == "step" and rec.chars_per_sec and time.perf_counter() - start > 3:
            rates.append(rec.chars_per_sec)
        if time.perf_counter() - start > seconds:
            break
    return statistics.median(rates)


def run(seconds: float = 20.0) -> None:
    from charrnn_cli.data import encode

    data = encode.load(corpus())
    ref_cps = reference.train(data.ids, len(data.vocab), seconds)[1]["chars_per_sec"]
    matmul_peak = gemm_gflops(2048, 2048, 2048)
    try:
        onednn_peak = gemm_gflops(2048, 2048, 2048, onednn=True)
    except (RuntimeError, AttributeError):  # a torch built without oneDNN
        onednn_peak = 0.0
    peak = max(matmul_peak, onednn_peak)  # the ceiling: the fastest GEMM this machine runs
    for name, given in CONFIGS.items():
        cfg = ModelConfig(vocab_size=len(data.vocab), **{k: v for k, v in given.items()
                          if k in ("hidden_size", "embed_size", "layers")})  # fmt: skip
        batch = given.get("batch_size", 32)
        lstm_gemm = gemm_gflops(batch, cfg.hidden_size * 2, 4 * cfg.hidden_size)
        cps = charrnn_cps(given, seconds)
        flops = 3 * _flops(cfg)
        emit(
            bench="train_throughput", config=name, hidden=cfg.hidden_size, layers=cfg.layers,
            batch=batch, seq=given.get("seq_len", 32), chars_per_sec=round(cps),
            reference="tutorial port (LSTMCell loop, one-hot, default size)",
            reference_chars_per_sec=round(ref_cps), ratio=round(cps / ref_cps, 2),
            flops_per_char=flops, gemm_gflops_2048=round(peak, 1),
            torch_matmul_gflops_2048=round(matmul_peak, 1),
            onednn_gemm_gflops_2048=round(onednn_peak, 1),
            ceiling_chars_per_sec=round(peak * 1e9 / flops),
            fraction_of_ceiling=round(cps * flops / (peak * 1e9), 3),
            lstm_gemm_gflops=round(lstm_gemm, 1),
            fraction_of_lstm_gemm_ceiling=round(cps * flops / (lstm_gemm * 1e9), 3),
        )  # fmt: skip


def _flops(cfg: ModelConfig) -> int:
    from charrnn_cli.model import flops_per_char

    return flops_per_char(cfg)
