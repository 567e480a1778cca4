"""Distributed data parallel set-up for ``torchrun`` (or a single process).

Input: the environment ``torchrun`` sets (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``/``MASTER_PORT``) and the configured device ("auto" | "cpu" | "cuda").
Output: a ``World`` (rank, local rank, world size), the device this process trains on, and
helpers: wrap a model in DDP, unwrap DDP/``torch.compile`` wrappers, gather small dicts.
Backend: NCCL on CUDA, gloo on CPU (``torchrun --nproc-per-node 2 -m trainer.cli train ...``
runs two CPU processes). Nothing is dropped here.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class World:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, world: World = World()) -> torch.device:
    """``name`` as a device; "auto" = CUDA when available. Each rank gets its local GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and world.distributed:
        return torch.device("cuda", world.local_rank)
    return torch.device(name)


def init_distributed(device_name: str = "auto") -> World:
    """Join the process group when launched by torchrun with WORLD_SIZE > 1."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return World()
    world = World(rank=int(os.environ["RANK"]), local_rank=int(os.environ.get("LOCAL_RANK", 0)),
                  world_size=world_size)
    device = resolve_device(device_name, world)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    logger.info("rank %d of %d (local rank %d) on %s, backend %s", world.rank, world.world_size,
                world.local_rank, device, dist.get_backend())
    return world


def cleanup(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def wrap_ddp(model: torch.nn.Module, device: torch.device, world: World) -> torch.nn.Module:
    """``model`` in ``DistributedDataParallel`` when there are several ranks, else itself."""
    if not world.distributed:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain open_clip model inside DDP and ``torch.compile`` wrappers."""
    while True:
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):  # torch.compile's OptimizedModule
            model = model._orig_mod
        else:
            return model


def gather_dicts(local: dict[Any, Any], world: World) -> dict[Any, Any]:
    """The union of every rank's ``local`` dict (keys are distinct per rank). Collective."""
    if not world.distributed:
        return dict(local)
    parts: list[Any] = [None] * world.world_size
    dist.all_gather_object(parts, local)
    merged: dict[Any, Any] = {}
    for part in parts:
        merged.update(part)
    return merged
