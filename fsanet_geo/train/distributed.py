"""torch.distributed set-up for training launched by ``torchrun``.

Without ``torchrun`` (``WORLD_SIZE`` unset or 1) everything is a no-op single process.
Under ``torchrun --nproc-per-node N`` each process joins the default group (NCCL on
CUDA, gloo on CPU); on CUDA process ``LOCAL_RANK`` uses GPU ``LOCAL_RANK``.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from fsanet_geo.device import resolve_device
from fsanet_geo.errors import DeviceError


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world_size``, its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, logs and progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """Average a tensor over processes (identity in a single process)."""
        if not self.distributed:
            return values
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values / self.world_size

    def close(self) -> None:
        """Leave the process group if this context created it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def init_distributed(device_spec: str = "auto") -> DistContext:
    """Join the ``torchrun`` process group when ``WORLD_SIZE > 1``; pick the device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext(rank=0, world_size=1, local_rank=0, device=resolve_device(device_spec))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_spec)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise DeviceError(f"process {rank} wants GPU {local_rank} but only "
                              f"{torch.cuda.device_count()} GPU(s) exist")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    owns = False
    if not dist.is_initialized():
        # Rank 0 validates alone while the others wait at a barrier: allow long waits.
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo",
                                init_method="env://", timeout=datetime.timedelta(hours=4))
        owns = True
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank,
                       device=device, owns_group=owns)
