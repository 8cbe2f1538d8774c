"""DDP under ``torchrun``: process group set-up, the device of each rank, mean over ranks."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

__all__ = ["World", "mean_over_ranks", "setup_world", "teardown_world"]


@dataclass(frozen=True)
class World:
    """This process's place: ``rank`` of ``size`` processes, ``local`` rank on its machine."""

    rank: int = 0
    size: int = 1
    local: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_world() -> World:
    """Join the process group when started by ``torchrun`` (``RANK`` set); else a world of one."""
    if "RANK" not in os.environ:
        return World()
    import torch.distributed as dist

    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    local = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
    return World(dist.get_rank(), dist.get_world_size(), local)


def teardown_world(world: World) -> None:
    if world.size > 1:
        import torch.distributed as dist

        dist.destroy_process_group()


def device_for(requested: str, world: World) -> torch.device:
    """``auto``: this rank's GPU if there is one, else the CPU; ``cuda``: this rank's GPU."""
    if requested == "auto":
        return torch.device(f"cuda:{world.local}" if torch.cuda.is_available() else "cpu")
    return torch.device(f"cuda:{world.local}" if requested == "cuda" else requested)


def mean_over_ranks(value: torch.Tensor, world: World) -> torch.Tensor:
    """The mean of a scalar tensor over all processes (the value itself in a world of one)."""
    if world.size == 1:
        return value
    import torch.distributed as dist

    value = value.clone()
    dist.all_reduce(value)
    return value / world.size
