"""torch.distributed set-up shared by training and detection, launched by ``torchrun``.

Without ``torchrun`` (``WORLD_SIZE`` unset or 1) everything is a no-op single process.
Under ``torchrun --nproc-per-node N`` each process joins the default group (training:
NCCL on CUDA, gloo on CPU; detection: always gloo, it only exchanges Python objects);
on CUDA process ``LOCAL_RANK`` uses GPU ``LOCAL_RANK``.

Object collectives (:meth:`DistContext.gather`, :meth:`DistContext.broadcast`,
:meth:`DistContext.all_gather`) run over a CPU (gloo) group when ``backend="gloo"`` was
asked (even if the caller had already set up an NCCL group), so they never touch GPU memory. :func:`agreed` runs a check on every process and makes all of them fail
together when any one fails, so that one bad input never leaves the others waiting.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from fsanet_geo.device import resolve_device
from fsanet_geo.errors import DeviceError, DistributedError

T = TypeVar("T")

TRAIN_TIMEOUT = datetime.timedelta(hours=4)
"""Training: rank 0 validates alone while the others wait at a barrier, so allow long waits."""


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world_size``, its device.

    ``object_group`` is the CPU group used for object collectives (None: the default group).
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool = False
    object_group: Any = None

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, outputs, logs and progress."""
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

    def gather(self, obj: Any) -> list[Any] | None:
        """Every process's picklable ``obj``, by rank, on rank 0; None on the others."""
        if not self.distributed:
            return [obj]
        out: list[Any] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, out, dst=0, group=self.object_group)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's picklable ``obj`` on every process (the others pass anything, e.g. None)."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0, group=self.object_group)
        return box[0]

    def all_gather(self, obj: Any) -> list[Any]:
        """Every process's picklable ``obj``, by rank, on every process."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj, group=self.object_group)
        return out

    def close(self) -> None:
        """Leave the process group if this context created it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def launched_world_size() -> int:
    """Processes torchrun started (``WORLD_SIZE``), 1 without torchrun."""
    return max(1, int(os.environ.get("WORLD_SIZE", "1") or 1))


def init_distributed(
    device_spec: str = "auto", *, backend: str | None = None, timeout: datetime.timedelta = TRAIN_TIMEOUT
) -> DistContext:
    """Join the ``torchrun`` process group when ``WORLD_SIZE > 1``; pick the device.

    Args:
        device_spec: ``auto | cpu | cuda | cuda:N``; under torchrun a CUDA choice becomes
            ``cuda:LOCAL_RANK``.
        backend: process-group backend; None -> NCCL on CUDA, else gloo.
        timeout: how long a collective may wait for the other processes.

    Raises:
        DeviceError: the device is not available, or this process's GPU does not exist.
    """
    world_size = launched_world_size()
    if world_size <= 1:
        return DistContext(rank=0, world_size=1, local_rank=0, device=resolve_device(device_spec))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_spec)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise DeviceError(
                f"process {rank} wants GPU {local_rank} but only {torch.cuda.device_count()} GPU(s) exist"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    owns = False
    if not dist.is_initialized():
        chosen = backend or ("nccl" if device.type == "cuda" else "gloo")
        dist.init_process_group(backend=chosen, init_method="env://", timeout=timeout)
        owns = True
    object_group = None
    if backend == "gloo" and dist.get_backend() != "gloo":  # a caller's NCCL group: objects go by CPU
        object_group = dist.new_group(backend="gloo", timeout=timeout)
    return DistContext(
        rank=rank, world_size=world_size, local_rank=local_rank, device=device, owns_group=owns,
        object_group=object_group,
    )


def agreed(ctx: DistContext, check: Callable[[], T]) -> T:
    """Run ``check`` on this process; if it raised on any process, raise on every process.

    The process whose ``check`` failed re-raises its own exception; the others raise
    :class:`DistributedError` naming the first failed rank and its message. In a single
    process this is just ``check()``.
    """
    if not ctx.distributed:
        return check()
    error: BaseException | None = None
    result: Any = None
    try:
        result = check()
    except Exception as exc:  # noqa: BLE001 - reported to every process, then re-raised
        error = exc
    messages = ctx.all_gather(None if error is None else error_line(error))
    raise_first(ctx, messages, error)
    return result  # type: ignore[no-any-return]


def raise_first(ctx: DistContext, messages: list[str | None], own: BaseException | None = None) -> None:
    """Raise when any of ``messages`` (one per rank, None = fine) reports a failure.

    ``own`` (this process's own exception) is re-raised as is; otherwise a
    :class:`DistributedError` names the first failed rank.
    """
    failed = [(rank, m) for rank, m in enumerate(messages) if m is not None]
    if not failed:
        return
    if own is not None:
        raise own
    rank, message = failed[0]
    raise DistributedError(f"process {rank} of {ctx.world_size} failed: {message}")


def error_line(exc: BaseException) -> str:
    """One line describing ``exc`` (its message; the type name for unexpected errors)."""
    from fsanet_geo.errors import FsanetError

    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, FsanetError) else f"{type(exc).__name__}: {text}"
