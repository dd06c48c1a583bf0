"""Data-parallel training across processes (torchrun, or `charrnn train --nproc N`).

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE (plus the rendezvous address); `from_env()` then
joins the process group (`gloo` on CPU, `nccl` on CUDA, which is RCCL on ROCm) with a timeout,
and `Comm` offers the few collectives the training loop needs: every decision to stop or skip
is agreed by all ranks, so no rank waits in a collective that another has left. A single
process gets a `Comm` whose collectives are no-ops.
"""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist

from charrnn_cli.errors import CharrnnError

TIMEOUT = datetime.timedelta(seconds=float(os.environ.get("CHARRNN_DIST_TIMEOUT", "120")))


class Comm:
    """Rank, world size and agreed decisions; trivially local when world == 1."""

    def __init__(self, rank: int = 0, world: int = 1, local_rank: int = 0) -> None:
        self.rank, self.world, self.local_rank = rank, world, local_rank
        self.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def any(self, *flags: bool) -> list[bool]:
        """For each flag, whether any rank raised it."""
        if not self.active:
            return list(flags)
        t = torch.tensor([float(f) for f in flags], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    def sum(self, *values: float) -> list[float]:
        """Element-wise sums over ranks (float64)."""
        if not self.active:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()

    def broadcast_float(self, value: float) -> float:
        """Rank 0's value on every rank (the wall clock that counts for the time budget)."""
        if not self.active:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.broadcast(t, src=0)
        return float(t.item())

    def broadcast_object(self, value: object) -> object:
        """Rank 0's Python object on every rank (the run name, say)."""
        if not self.active:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        if self.active and dist.is_initialized():
            dist.destroy_process_group()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def from_env(device_spec: str) -> Comm:
    """Join torchrun's process group when WORLD_SIZE > 1; a local Comm otherwise."""
    if not launched_by_torchrun():
        return Comm()
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_spec != "cpu" and torch.cuda.is_available()
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    try:
        dist.init_process_group(backend=backend, timeout=TIMEOUT)
    except Exception as exc:  # rendezvous failure, timeout
        raise CharrnnError(f"rank {rank} could not join the process group: {exc}") from None
    comm = Comm(rank, world, local_rank)
    comm.device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    return comm
