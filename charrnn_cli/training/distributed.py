"""Data-parallel training across processes (torchrun, or `charrnn train --nproc N`).

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE (plus the rendezvous address); `from_env()` then
joins the process group (`gloo` on CPU, `nccl` on CUDA, which is RCCL on ROCm; each rank on
its LOCAL_RANK GPU) with a timeout, and `Comm` offers the few collectives the training loop
needs: every decision to stop, skip or save is agreed by all ranks, so no rank waits in a
collective that another has left. A single process gets a `Comm` whose collectives are no-ops.

A failure on one rank ends the job: the rank exits with its error, torchrun's agent stops the
others (a peer blocked in a collective with the dead rank fails at once, or at the timeout),
and the launcher reports which rank failed first.
"""

from __future__ import annotations

import datetime
import os
import sys
import time

import torch
import torch.distributed as dist

from charrnn_cli.errors import CharrnnError, UsageError


def _timeout() -> datetime.timedelta:
    """How long joining the group, or any one collective, may wait for the other ranks."""
    raw = os.environ.get("CHARRNN_DIST_TIMEOUT", "120")
    try:
        seconds = float(raw)
    except ValueError:
        raise UsageError(f"CHARRNN_DIST_TIMEOUT={raw!r} is not a number of seconds") from None
    if seconds <= 0:
        raise UsageError(f"CHARRNN_DIST_TIMEOUT must be positive, got {raw}")
    return datetime.timedelta(seconds=seconds)


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
        return [v > 0 for v in self.max(*(float(f) for f in flags))]

    def max(self, *values: float) -> list[float]:
        """Element-wise maxima over ranks (float64): flags, or the slowest rank's clock."""
        return self._all_reduce(values, dist.ReduceOp.MAX)

    def sum(self, *values: float) -> list[float]:
        """Element-wise sums over ranks (float64)."""
        return self._all_reduce(values, dist.ReduceOp.SUM)

    def _all_reduce(self, values: tuple[float, ...], op: object) -> list[float]:
        if not self.active:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=op)
        return t.tolist()

    def gather_rows(self, local: list[torch.Tensor]) -> list[torch.Tensor]:
        """Every rank's rows of each (L, B, H) tensor, back in the order they were dealt:
        rank r holds rows r, r + world, ... of the (L, B*world, H) whole (batches.shard).
        On the CPU, for a checkpoint."""
        if not self.active:
            return [t.cpu() for t in local]
        out = []
        for t in local:
            parts = [torch.zeros_like(t, device=self.device) for _ in range(self.world)]
            dist.all_gather(parts, t.to(self.device))
            whole = torch.empty(t.shape[0], t.shape[1] * self.world, t.shape[2], dtype=t.dtype)
            for r, part in enumerate(parts):
                whole[:, r :: self.world] = part.cpu()
            out.append(whole)
        return out

    def gather_objects(self, mine: object) -> list[object]:
        """Every rank's picklable object (its RNG states, say), in rank order."""
        if not self.active:
            return [mine]
        everyone: list[object] = [None] * self.world
        dist.all_gather_object(everyone, mine)
        return everyone

    def broadcast_object(self, value: object) -> object:
        """Rank 0's Python object on every rank (the run name, say)."""
        if not self.active:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        """Leave the process group.

        After a normal end every rank waits for the others (rank 0 may still be writing the
        last checkpoint) and then leaves. While an exception is on its way out, no collective
        is attempted: the other ranks may be inside one, and torchrun's agent stops them.
        """
        if not (self.active and dist.is_initialized()):
            return
        failing = sys.exc_info()[0] is not None
        try:
            if not failing:
                if self.device.type == "cuda":
                    dist.barrier(device_ids=[self.local_rank])
                else:
                    dist.barrier()
                dist.destroy_process_group()
        except Exception:  # a peer that failed at the very end: its own error is the story
            pass
        finally:
            # gloo's worker threads free a finished collective's tensors a moment after the
            # caller has its result, and that needs the GIL: give it to them now, or the
            # interpreter may be finalising by then and abort the process (SIGABRT at exit)
            time.sleep(0.05)


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def from_env(device_spec: str) -> Comm:
    """Join torchrun's process group when WORLD_SIZE > 1; a local Comm otherwise."""
    if not launched_by_torchrun():
        return Comm()
    try:
        rank = int(os.environ["RANK"])
        world = int(os.environ["WORLD_SIZE"])
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    except (KeyError, ValueError) as exc:
        raise CharrnnError(
            f"WORLD_SIZE is {os.environ.get('WORLD_SIZE')} but {exc} is missing or not a number: "
            "start data-parallel training with torchrun or `charrnn train --nproc N`"
        ) from None
    use_cuda = _wants_cuda(device_spec)
    if use_cuda:
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        if local_rank >= torch.cuda.device_count():
            raise UsageError(
                f"{local_world} processes on this machine but only "
                f"{torch.cuda.device_count()} GPU(s) are visible: use at most one process per "
                "GPU (--nproc / --nproc-per-node), or --device cpu"
            )
        torch.cuda.set_device(local_rank)
    backend = "nccl" if use_cuda else "gloo"
    timeout = _timeout()
    try:
        if use_cuda:
            dist.init_process_group(
                backend=backend, timeout=timeout, device_id=torch.device("cuda", local_rank)
            )
        else:
            dist.init_process_group(backend=backend, timeout=timeout)
    except Exception as exc:  # rendezvous failure, timeout
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CharrnnError(
            f"rank {rank} of {world} could not join the process group ({backend}) within "
            f"{timeout.total_seconds():g} s: {first[:300]}"
        ) from None
    comm = Comm(rank, world, local_rank)
    comm.device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    return comm


def _wants_cuda(device_spec: str) -> bool:
    """CUDA (nccl) or the CPU (gloo) for this job; another device is refused, not ignored."""
    from charrnn_cli import device

    spec = device_spec or "auto"
    if spec == "mps":
        raise UsageError(
            "--device mps: data-parallel training runs on CPUs (gloo) or CUDA/ROCm GPUs "
            "(nccl); use one process on MPS, or --device cpu"
        )
    if spec == "cpu":
        return False
    return device.pick(spec).type == "cuda"  # cuda[:N] that is not there: a UsageError
