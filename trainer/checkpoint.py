"""Training checkpoints: save (atomically), find and load (``weights_only``), restore.

Input: the model, optimizer, step, config and data cursor of a run; or a checkpoint to resume.
Output, under ``OUTPUT/checkpoints/``::

    epoch_latest.pt   {"state_dict", "optimizer", "step", "config", "cursor", "rng", "world"}
                      every save_every steps and at the end: everything ``--resume`` needs
    final.pt          {"state_dict"} at the end: loads with
                      open_clip.create_model_and_transforms(name, pretrained=path)

``state_dict`` is the plain open_clip model's (no DDP ``module.`` or compile ``_orig_mod.``
prefixes). Every file is loaded with ``torch.load(weights_only=True)``: tensors, numbers,
strings, lists and dicts only, so a checkpoint cannot run code. Nothing is dropped here.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict
from typing import Any, Optional

import torch

from trainer.config import TrainConfig
from trainer.distributed import World, unwrap

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
LATEST = "epoch_latest.pt"
FINAL = "final.pt"
# Config keys a resumed run may change without changing what it computes.
RESUME_MAY_CHANGE = ("resume", "output", "log_every", "save_every", "tensorboard", "workers",
                     "compile")


def save_atomic(obj: Any, path: str) -> None:
    """torch.save to a temporary name, then rename: a crash never leaves half a checkpoint."""
    tmp = f"{path}.tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def training_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int,
                   cfg: TrainConfig, cursor: dict[int, int], world: World) -> dict[str, Any]:
    """Everything a resumed run needs, as ``weights_only``-loadable values."""
    return {"state_dict": unwrap(model).state_dict(), "optimizer": optimizer.state_dict(),
            "step": step, "config": {k: _plain(v) for k, v in asdict(cfg).items()},
            "cursor": {int(k): int(v) for k, v in cursor.items()},
            "rng": torch.get_rng_state(),
            "world": {"world_size": world.world_size, "workers": cfg.workers}}


def save_checkpoints(state: dict[str, Any], output: str, final: bool = False) -> str:
    """Write ``epoch_latest.pt`` (and ``final.pt`` when ``final``); returns the path of the
    last file written."""
    ckpt_dir = os.path.join(output, CHECKPOINT_DIR)
    os.makedirs(ckpt_dir, exist_ok=True)
    latest = os.path.join(ckpt_dir, LATEST)
    save_atomic(state, latest)
    if not final:
        return latest
    final_path = os.path.join(ckpt_dir, FINAL)
    save_atomic({"state_dict": state["state_dict"]}, final_path)
    return final_path


def resume_path(cfg: TrainConfig) -> Optional[str]:
    """The checkpoint ``cfg.resume`` names ("latest" = OUTPUT's epoch_latest.pt), or None."""
    if not cfg.resume:
        return None
    path = cfg.resume
    if path == "latest":
        path = os.path.join(cfg.output, CHECKPOINT_DIR, LATEST)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"resume checkpoint not found: {path}")
    return path


def load_training_state(path: str) -> dict[str, Any]:
    """A resumable checkpoint, loaded with ``weights_only=True``; checks it has what it needs."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    missing = [k for k in ("state_dict", "optimizer", "step") if k not in state]
    if missing:
        raise ValueError(f"{path} cannot be resumed from: it lacks {missing} (final.pt holds "
                         "weights only; resume from checkpoints/epoch_latest.pt)")
    return state


def check_compatible(state: dict[str, Any], cfg: TrainConfig, world: World) -> None:
    """Warn where the resumed run differs from the checkpointed one (then it is not exact)."""
    saved = state.get("config", {})
    current = {k: _plain(v) for k, v in asdict(cfg).items()}
    changed = sorted(k for k in current if k not in RESUME_MAY_CHANGE
                     and k in saved and saved[k] != current[k])
    if changed:
        logger.warning("resuming with changed settings %s: the run will not match an "
                       "uninterrupted one", {k: (saved[k], current[k]) for k in changed})
    before = state.get("world", {})
    if before and (before.get("world_size"), before.get("workers")) != (world.world_size,
                                                                        cfg.workers):
        logger.warning("resuming with %d ranks x %d workers (checkpoint: %s ranks x %s workers):"
                       " data streams do not line up, the data order differs from an "
                       "uninterrupted run", world.world_size, cfg.workers,
                       before.get("world_size"), before.get("workers"))


def restore(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
            state: dict[str, Any]) -> tuple[int, dict[int, int]]:
    """Load weights and optimizer state; returns ``(step, cursor)``."""
    unwrap(model).load_state_dict(state["state_dict"])
    optimizer.load_state_dict(state["optimizer"])
    cursor = {int(k): int(v) for k, v in state.get("cursor", {}).items()}
    return int(state["step"]), cursor
