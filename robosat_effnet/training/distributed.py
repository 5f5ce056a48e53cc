"""Multi-GPU and multi-node training through PyTorch's own engine (torchrun + DistributedDataParallel).

`rs-effnet train` run under `torchrun --nproc_per_node N` finds torchrun's environment variables
(WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, ...) and joins the process group: NCCL on GPUs, gloo on CPU.
Each rank trains on its shard of the tiles, validation metrics are summed across ranks, and only
rank 0 writes files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


@dataclass
class DistInfo:
    """Where this process stands in a distributed run (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialised_here: bool = False  # whether we must tear the process group down at the end

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(use_cuda: bool) -> DistInfo:
    """Join torchrun's process group if this process was started by torchrun; otherwise a single-process run."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    initialised_here = False
    if not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        initialised_here = True
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, initialised_here)


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """The sum of `tensor` over all ranks (the tensor itself when not distributed)."""
    if info.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def synchronize(info: DistInfo) -> None:
    """Wait until every rank gets here (nothing when not distributed)."""
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    """Leave the process group if we joined it."""
    if info.initialised_here and dist.is_initialized():
        dist.destroy_process_group()


class ShardSampler(Sampler[int]):
    """Every `world_size`-th index starting at `rank`, in order and without padding, so that summed
    validation metrics count each tile exactly once (DistributedSampler would repeat tiles to even out)."""

    def __init__(self, length: int, rank: int, world_size: int):
        self.indices = list(range(rank, length, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
