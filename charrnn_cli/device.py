"""Which device training and sampling use, said in one line.

`auto` picks CUDA on NVIDIA, CUDA-on-ROCm on AMD (reported as ROCm, told apart by
`torch.version.hip`), then Apple's MPS, then the CPU. A device that was asked for and is not
there is an error, never a silent fallback.
"""

from __future__ import annotations

import functools
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
    threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'' if threads == 1 else 's'})"


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


# oneDNN's instruction sets below AVX512_CORE_BF16, as ONEDNN_MAX_CPU_ISA names them: a cap
# at one of these leaves oneDNN's bf16 emulated or refused, whatever the CPU itself has.
_ISA_WITHOUT_BF16 = frozenset(
    ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI")
)


@functools.cache
def native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AMX tiles or AVX-512 BF16) and oneDNN may use
    it. There oneDNN's LSTM kernels run ~2x faster in bf16 than in fp32; elsewhere bf16 is
    emulated and slower, or, with oneDNN capped below it (ONEDNN_MAX_CPU_ISA=AVX2), refused."""
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    if not any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks):
        return False
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or ""
    if cap.upper() in _ISA_WITHOUT_BF16:
        return False
    return _bf16_lstm_runs()


def _bf16_lstm_runs() -> bool:
    """One training step of a 2-unit LSTM under bf16 autocast, forward and backward: True if
    oneDNN builds and runs both. The LSTM's initial weights draw from a forked generator, so
    the probe leaves torch's random state as it found it, whenever it is called."""
    try:
        with torch.random.fork_rng(devices=[]), torch.autocast("cpu", dtype=torch.bfloat16):
            y, _ = torch.nn.LSTM(2, 2)(torch.zeros(1, 1, 2))
        y.float().sum().backward()
    except RuntimeError:
        return False
    return True


def resolve_precision(precision: str, dev: torch.device, fallback: bool = False) -> str:
    """What `--precision` means on `dev`: fp32, bf16 or fp16.

    `auto` is bf16 on a CPU that computes it in hardware: the weights, gradients and Adam stay
    fp32 and only the products run in bf16 (autocast), a default step 1.3x and a cpu-preset
    step 1.9x faster to the same held-out loss (docs/benchmarks.md). Everywhere else `auto` is
    fp32: an emulated bf16 is slower, and on a GPU the default model is launch-bound (the gpu
    preset asks for bf16 itself). bf16 asked of a CPU without it, or fp16 of any CPU, is an
    error, not a slow run; with `fallback` (a resumed run's stored wish, not asked anew) they
    are fp32, since the precision changes no stored weight."""
    if dev.type != "cpu":
        return "fp32" if precision == "auto" else precision
    if precision == "auto" or (fallback and precision in ("bf16", "fp16")):
        return "bf16" if precision != "fp16" and native_bf16() else "fp32"
    if precision == "fp16":
        raise UsageError("--precision fp16 needs a GPU; use bf16 or fp32 on the CPU")
    if precision == "bf16" and not native_bf16():
        raise UsageError(
            "--precision bf16: this CPU has no bf16 arithmetic (AMX or AVX-512 BF16); use fp32"
        )
    return precision


def autocast_dtype(precision: str) -> torch.dtype | None:
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
