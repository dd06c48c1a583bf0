"""Which device training and sampling use, said in one line.

`auto` picks CUDA on NVIDIA, CUDA-on-ROCm on AMD (reported as ROCm, told apart by
`torch.version.hip`), then Apple's MPS, then the CPU. A device that was asked for and is not
there is an error, never a silent fallback.
"""

from __future__ import annotations

import os
import re

import torch

from charrnn_cli.errors import UsageError

DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def pick(spec: str = "auto") -> torch.device:
    """The torch.device for `auto|cpu|cuda|cuda:N|mps`."""
    if not DEVICE_RE.match(spec):
        raise UsageError(f"--device {spec!r}: use auto, cpu, cuda, cuda:N or mps")
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {spec}: no CUDA or ROCm GPU is available to torch here")
        dev = torch.device(spec)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UsageError(
                f"--device {spec}: only {torch.cuda.device_count()} GPU(s) are visible"
            )
        return dev if dev.index is not None else torch.device("cuda", 0)
    if spec == "mps" and not _mps_available():
        raise UsageError("--device mps: Apple's MPS backend is not available here")
    return torch.device(spec)


def for_sampling(spec: str, hidden_size: int | None, batched: bool = False) -> str:
    """Where to sample. One character per step is latency-bound: for models up to 1024 units
    the numpy stepper on the CPU outruns a GPU's kernel launches (2x128 LSTM: ~37k vs ~2k
    chars/s on an H200), so `auto` samples those on the CPU. Many streams a step (`--lines`,
    `--num`) are matrix products, where a GPU is at home: `auto` leaves those to `pick`."""
    if spec != "auto" or batched or hidden_size is None:
        return spec
    return "cpu" if hidden_size <= 1024 else spec


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def backend_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return "ROCm" if getattr(torch.version, "hip", None) else "CUDA"
    return dev.type.upper() if dev.type == "mps" else "CPU"


def describe(dev: torch.device) -> str:
    """One line: `CUDA 0: NVIDIA H200`, `ROCm 0: AMD Instinct MI300X`, `MPS`, `CPU (2 threads)`."""
    if dev.type == "cuda":
        index = dev.index or 0
        return f"{backend_name(dev)} {index}: {torch.cuda.get_device_name(index)}"
    if dev.type == "mps":
        return "MPS (Apple GPU)"
    return f"CPU ({torch.get_num_threads()} threads)"


def info() -> dict[str, str | int | None]:
    """What `charrnn info` reports about torch and the device training would use."""
    dev = pick("auto")
    return {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "hip": getattr(torch.version, "hip", None),
        "device": str(dev),
        "backend": backend_name(dev),
        "device_name": describe(dev),
        "threads": torch.get_num_threads(),
        "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "cpu_count": os.cpu_count(),
    }


def autocast_dtype(precision: str) -> torch.dtype | None:
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
