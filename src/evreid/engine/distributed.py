"""Device selection and torchrun / DDP helpers: one process per device, gloo on CPU,
nccl on GPU."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from evreid.errors import EvreidError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


SINGLE_PROCESS = DistInfo()


def resolve_device(name: str, info: DistInfo = SINGLE_PROCESS) -> torch.device:
    """MODEL.DEVICE as a torch device; under torchrun each process takes its local GPU.

    ``auto`` picks CUDA only when every process of this node gets a GPU of its own
    (torchrun's LOCAL_WORLD_SIZE), else the CPU for all of them: every rank must
    choose alike, and two processes on one GPU is not what ``auto`` should do.
    """
    procs_here = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if name == "auto":
        name = ("cuda" if torch.cuda.is_available() and torch.cuda.device_count() >= procs_here
                else "cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise EvreidError("MODEL.DEVICE is cuda but no CUDA device is available")
        count = torch.cuda.device_count()
        if info.local_rank >= count:
            raise EvreidError(
                f"MODEL.DEVICE is cuda but this process is local rank {info.local_rank} and "
                f"only {count} CUDA device(s) are visible: start at most {count} process(es) "
                f"per node (torchrun --nproc_per_node {count}) or set MODEL.DEVICE cpu")
        return torch.device("cuda", info.local_rank)
    return torch.device(name)


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group torchrun set up (RANK / WORLD_SIZE env), if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return SINGLE_PROCESS
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_reduce_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if not info.enabled:
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / info.world_size


def broadcast_flag(flag: bool, info: DistInfo) -> bool:
    """True on every rank if rank 0 says so (a stop decision must be shared)."""
    if not info.enabled:
        return flag
    tensor = torch.tensor([1 if flag else 0])
    dist.broadcast(tensor, src=0)
    return bool(tensor.item())


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
