"""device.py: what `--precision` means on each device, and that a bf16 run on the CPU learns
as well as an fp32 one and says so in its start line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from charrnn_cli import device
from charrnn_cli.errors import UsageError
from tests.helpers import TINY, spawn, val_losses

CPU, GPU = torch.device("cpu"), torch.device("cuda", 0)


@pytest.mark.parametrize(
    "native, asked, dev, means",
    [
        (True, "auto", CPU, "bf16"),
        (False, "auto", CPU, "fp32"),
        (True, "fp32", CPU, "fp32"),
        (False, "fp32", CPU, "fp32"),
        (True, "bf16", CPU, "bf16"),
        (True, "auto", GPU, "fp32"),
        (False, "bf16", GPU, "bf16"),
        (False, "fp16", GPU, "fp16"),
    ],
)
def test_what_each_precision_means(monkeypatch, native, asked, dev, means):
    monkeypatch.setattr(device, "native_bf16", lambda: native)
    assert device.resolve_precision(asked, dev) == means


@pytest.mark.parametrize(
    "native, asked, words", [(False, "bf16", "no bf16 arithmetic"), (True, "fp16", "GPU")]
)
def test_what_a_cpu_cannot_do_is_refused(monkeypatch, native, asked, words):
    monkeypatch.setattr(device, "native_bf16", lambda: native)
    with pytest.raises(UsageError, match=words):
        device.resolve_precision(asked, CPU)


def test_native_bf16_reads_the_cpu():
    info = Path("/proc/cpuinfo")
    if not info.exists():
        pytest.skip("no /proc/cpuinfo here")
    flags = set(info.read_text().split())
    # torch also asks whether the OS enabled AMX, so only one way round is certain
    if device.native_bf16():
        assert {"amx_bf16", "avx512_bf16"} & flags


@pytest.mark.parametrize(
    "name, cap", [("ONEDNN_MAX_CPU_ISA", "avx2"), ("DNNL_MAX_CPU_ISA", "AVX2")]
)
def test_a_onednn_cap_is_read_in_either_spelling(monkeypatch, name, cap):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    monkeypatch.setattr(device, "_bf16_lstm_runs", lambda: True)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    assert device.native_bf16.__wrapped__() is True
    monkeypatch.setenv(name, cap)
    assert device.native_bf16.__wrapped__() is False


def test_bf16_is_off_where_onednn_cannot_build_its_lstm(monkeypatch):
    # flags that say bf16 and a oneDNN that refuses it (a cap under another name, an old build)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)

    def refuse(*args, **kwargs):
        raise RuntimeError("could not create a primitive descriptor for the LSTM forward")

    monkeypatch.setattr(torch.nn, "LSTM", refuse)
    assert device.native_bf16.__wrapped__() is False


@pytest.mark.slow
def test_onednn_capped_below_bf16_trains_in_fp32(tiny_corpus, charrnn_home):
    # A user's ONEDNN_MAX_CPU_ISA=AVX2 turns oneDNN's bf16 LSTM off on an AMX CPU: `auto` must
    # then mean fp32, not a run that dies building its first kernel
    args = ["train", "--corpus", str(tiny_corpus), *TINY, "--max-steps", "3", "--device", "cpu"]
    proc = spawn(*args, env={"ONEDNN_MAX_CPU_ISA": "AVX2", "CHARRNN_HOME": str(charrnn_home)})
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "in bf16" not in err
    config = json.loads(next(charrnn_home.glob("runs/*/config.json")).read_text())
    assert config["precision_used"] == "fp32"


@pytest.mark.slow
@pytest.mark.skipif(not device.native_bf16(), reason="this CPU has no bf16 arithmetic")
def test_a_bf16_run_learns_like_an_fp32_one(cli, tiny_corpus, charrnn_home):
    common = ["--corpus", str(tiny_corpus), *TINY, "--max-steps", "120", "--eval-every", "60",
              "--lr", "0.02", "--device", "cpu"]  # fmt: skip
    runs = {}
    for precision in ("fp32", "bf16"):
        r = cli("train", *common, "--run", precision, "--precision", precision)
        assert r.code == 0, r.err
        assert (" in bf16" in r.err) == (precision == "bf16")
        runs[precision] = val_losses(charrnn_home, precision)
    # the products round to bf16's 8 bits, so the runs part ways, but learn alike
    assert runs["bf16"][120] < 0.8 * runs["bf16"][60]
    assert runs["bf16"][120] == pytest.approx(runs["fp32"][120], rel=0.1)
    # the held-out score itself is fp32 on the CPU: what `charrnn eval` reports for the run
    r = cli("eval", "--run", "bf16", "--checkpoint", "last", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["loss"] == pytest.approx(runs["bf16"][120], abs=1e-6)


@pytest.mark.skipif(not device.native_bf16(), reason="this CPU has no bf16 arithmetic")
def test_a_bf16_run_resumes_where_auto_means_fp32(cli, tiny_corpus, charrnn_home, monkeypatch):
    common = ["--corpus", str(tiny_corpus), *TINY, "--layers", "2", "--start-state", "zero",
              "--device", "cpu", "--run", "z"]  # fmt: skip
    assert cli("train", *common, "--max-steps", "20").code == 0  # auto: bf16 here
    assert (
        json.loads((charrnn_home / "runs" / "z" / "config.json").read_text())["precision_used"]
        == "bf16"
    )
    monkeypatch.setattr(device, "native_bf16", lambda: False)  # taken up on a CPU without it
    r = cli("train", "--run", "z", "--resume", "--max-steps", "40")
    assert r.code == 0, r.err
    config = json.loads((charrnn_home / "runs" / "z" / "config.json").read_text())
    assert config["precision_used"] == "fp32" and config["train"]["precision"] == "auto"


def test_a_cpu_is_described_with_its_threads_in_good_grammar(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert device.describe(torch.device("cpu")) == "CPU (1 thread)"
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    assert device.describe(torch.device("cpu")) == "CPU (8 threads)"
