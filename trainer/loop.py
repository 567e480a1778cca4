"""Contrastive (CLIP / SigLIP) training loop over our shards.

Input: a ``TrainConfig`` (model, shard dirs and mixing weights, optimisation settings); under
``torchrun`` every rank runs this with its own slice of the data (DDP).
Output, under ``cfg.output`` (main rank only):

    run_config.yaml                 the resolved config
    train_log.csv, tensorboard/     see trainer.monitor
    checkpoints/epoch_latest.pt     resumable state, every save_every steps and at the end
    checkpoints/final.pt            open_clip-loadable weights (see trainer.checkpoint)

and a ``TrainResult``. The recipe is open_clip_train's: ``ClipLoss`` (or ``SigLipLoss``),
AdamW without weight decay on gains/biases/logit_scale, cosine schedule with linear warmup,
grad-norm clipping, logit_scale clamped to ln(100), gradient accumulation by feature caching
(``--accum-freq``: the loss sees ``accum_steps x batch_size`` pairs per rank). ``resume``
continues exactly where the checkpoint left off (trainer.sampling says how the data does).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Optional

import numpy as np
import torch
import yaml
from open_clip_train.scheduler import cosine_lr  # ships inside the open_clip_torch wheel

from pipeline.shard_format import RUN_CONFIG_FILE
from trainer import checkpoint as ckpt
from trainer.config import TrainConfig
from trainer.data import make_loader
from trainer.distributed import (World, cleanup, gather_dicts, init_distributed,
                                 resolve_device, unwrap, wrap_ddp)
from trainer.losses import compute_loss, make_loss, sample_weights
from trainer.model import create_model
from trainer.monitor import LOG_FILE, RunMonitor  # noqa: F401  (LOG_FILE: re-exported)

logger = logging.getLogger(__name__)

MAX_LOGIT_SCALE = math.log(100)  # open_clip_train clamps here so the logits cannot blow up
__all__ = ["TrainResult", "train", "param_groups", "make_optimizer", "resolve_device"]


@dataclass
class TrainResult:
    steps: int  # the step reached (cfg.steps)
    final_loss: float
    losses: list[float] = field(default_factory=list)  # one per step run by this call
    checkpoint_path: str = ""  # checkpoints/final.pt
    samples_per_s: float = 0.0  # all ranks, over all steps of this call but its first
    skipped_samples: int = 0  # dropped by the loader on this rank, all its workers
    start_step: int = 0  # > 0 when resumed


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """open_clip_train's rule: no decay for gains, biases (logit_bias too), norms, logit_scale."""
    def exclude(name: str, p: torch.nn.Parameter) -> bool:
        return (p.ndim < 2 or "bn" in name or "ln" in name or "bias" in name
                or "logit_scale" in name)

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [
        {"params": [p for n, p in named if exclude(n, p)], "weight_decay": 0.0},
        {"params": [p for n, p in named if not exclude(n, p)], "weight_decay": weight_decay},
    ]


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig,
                   device: torch.device) -> torch.optim.Optimizer:
    # The fused kernel matters on CPU: ~8x faster optimizer steps for the tiny model, whose
    # 49408-row token embedding is most of its parameters.
    fused = device.type in ("cpu", "cuda")
    return torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr,
                             betas=(0.9, 0.98), eps=1e-6, fused=fused)


def write_run_config(cfg: TrainConfig) -> None:
    values = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}
    with open(os.path.join(cfg.output, RUN_CONFIG_FILE), "w", encoding="utf-8") as fh:
        yaml.safe_dump(values, fh, sort_keys=False)


def _next_batch(batches: Iterator) -> tuple:
    try:
        return next(batches)
    except StopIteration:
        raise RuntimeError("the data loader stopped yielding batches: are all samples corrupt, "
                           "or is batch_size larger than the data?") from None


def _forward_loss(net: torch.nn.Module, images: torch.Tensor, texts: torch.Tensor,
                  loss_fn: torch.nn.Module, weights: Optional[torch.Tensor],
                  cached: Optional[list[dict]] = None, index: int = 0) -> torch.Tensor:
    """The loss of one micro-batch; with ``cached`` (feature caching), the other micro-batches'
    features stand in as negatives, as open_clip_train's ``--accum-freq``."""
    out = net(images, texts)
    if cached is not None:
        for key in ("image_features", "text_features"):
            out[key] = torch.cat([c[key] for c in cached[:index]] + [out[key]]
                                 + [c[key] for c in cached[index + 1:]])
        if index < len(cached) - 1:
            # Every micro-batch's loss is the whole loss: its logit_scale/bias gradient would
            # be summed accum times (open_clip_train does); count it once, in the last one.
            for key in ("logit_scale", "logit_bias"):
                if out.get(key) is not None:
                    out[key] = out[key].detach()
    return compute_loss(loss_fn, out, weights)


def train_step(net: torch.nn.Module, group: list[tuple], loss_fn: torch.nn.Module,
               optimizer: torch.optim.Optimizer, cfg: TrainConfig, device: torch.device
               ) -> float:
    """One optimizer step over ``group`` (``accum_steps`` batches of (images, tokens, info))."""
    autocast = torch.autocast(device.type, dtype=torch.bfloat16,
                              enabled=cfg.precision == "bf16")
    inputs = [(im.to(device, non_blocking=True), tok.to(device, non_blocking=True))
              for im, tok, _ in group]
    weights = [sample_weights(info["meta"], cfg.sample_weight) for _, _, info in group]
    weights_all = None if weights[0] is None else torch.cat(weights).to(device)
    optimizer.zero_grad(set_to_none=True)
    cached = None
    if len(group) > 1:
        with torch.no_grad(), autocast:
            cached = [{k: v for k, v in net(im, tok).items() if k.endswith("_features")}
                      for im, tok in inputs]
    for j, (images, texts) in enumerate(inputs):
        last = j == len(inputs) - 1
        sync = net.no_sync() if hasattr(net, "no_sync") and not last else contextlib.nullcontext()
        with sync:
            with autocast:
                loss = _forward_loss(net, images, texts, loss_fn, weights_all, cached, j)
            loss.backward()
    model = unwrap(net)
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    with torch.no_grad():
        model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
    return float(loss.detach())


def train(cfg: TrainConfig) -> TrainResult:
    """Train ``cfg.model`` on ``cfg.shards`` up to ``cfg.steps`` steps; see the module doc."""
    if not cfg.shards:
        raise ValueError("no shards: set `shards` (a list of shard directories)")
    world = init_distributed(cfg.device)
    try:
        return _train(cfg, world)
    finally:
        cleanup(world)


def _setup(cfg: TrainConfig, world: World, device: torch.device) -> dict[str, Any]:
    """Model, optimizer and the resumed step/cursor (0/{} for a fresh run)."""
    resume = ckpt.resume_path(cfg)
    state = ckpt.load_training_state(resume) if resume else None
    seed_everything(cfg.seed)  # the same initial weights on every rank
    model, preprocess, _, tokenizer = create_model(cfg.model, cfg.pretrained, device=device,
                                                   image_size=cfg.image_size,
                                                   siglip=cfg.loss == "siglip")
    model.train()
    optimizer = make_optimizer(model, cfg, device)
    step, cursor = 0, {}
    if state is not None:
        ckpt.check_compatible(state, cfg, world)
        step, cursor = ckpt.restore(model, optimizer, state)
        logger.info("resuming from %s at step %d", resume, step)
    net = wrap_ddp(model, device, world)
    if cfg.compile:
        net = torch.compile(net)
    return {"model": model, "net": net, "optimizer": optimizer, "preprocess": preprocess,
            "tokenizer": tokenizer, "step": step, "cursor": cursor, "state": state}


def _train(cfg: TrainConfig, world: World) -> TrainResult:
    device = resolve_device(cfg.device, world)
    if world.is_main:
        os.makedirs(cfg.output, exist_ok=True)
        write_run_config(cfg)
    s = _setup(cfg, world, device)
    start, cursor = s["step"], s["cursor"]
    loader = make_loader(cfg.shards, s["preprocess"], s["tokenizer"], cfg.batch_size,
                         workers=cfg.workers, seed=cfg.seed, shuffle_buffer=cfg.shuffle_buffer,
                         weights=cfg.shard_weights, rank=world.rank, cursor=cursor,
                         offset=start * cfg.accum_steps)
    batches = iter(loader)  # before restoring the RNG: the DataLoader draws its seed from it
    if s["state"] is not None and "rng" in s["state"]:
        torch.set_rng_state(s["state"]["rng"])
    schedule = cosine_lr(s["optimizer"], cfg.lr, cfg.warmup_steps, cfg.steps)
    loss_fn = make_loss(cfg.loss, world.rank, world.world_size)
    per_step = cfg.batch_size * cfg.accum_steps * world.world_size
    monitor = RunMonitor(cfg.output, cfg.steps, per_step, cfg.log_every, start_step=start,
                         tensorboard=cfg.tensorboard, enabled=world.is_main)
    losses, skipped = [], {}
    first_end = end = time.perf_counter()
    try:
        for step in range(start + 1, cfg.steps + 1):
            group = [_next_batch(batches) for _ in range(cfg.accum_steps)]
            lr = schedule(step - 1)
            losses.append(train_step(s["net"], group, loss_fn, s["optimizer"], cfg, device))
            for _, _, info in group:
                cursor[info["stream"]], skipped[info["stream"]] = info["next"], info["skipped"]
            end = time.perf_counter()
            first_end = end if step == start + 1 else first_end
            monitor.update(step, losses[-1], lr)
            if cfg.save_every and step % cfg.save_every == 0 and step < cfg.steps:
                _save(s, step, cfg, cursor, world)
                monitor.pause()  # keep saving out of the throughput
    finally:
        monitor.close()
    path = _save(s, cfg.steps, cfg, cursor, world, final=True)
    ran = len(losses)
    rate = (ran - 1) * per_step / (end - first_end) if ran > 1 else 0.0
    return TrainResult(steps=cfg.steps, final_loss=losses[-1] if losses else float("nan"),
                       losses=losses, checkpoint_path=path, samples_per_s=rate,
                       skipped_samples=sum(skipped.values()), start_step=start)


def _save(s: dict[str, Any], step: int, cfg: TrainConfig, cursor: dict[int, int],
          world: World, final: bool = False) -> str:
    """Gather every rank's data cursor (collective), then the main rank writes."""
    merged = gather_dicts(cursor, world)
    path = os.path.join(cfg.output, ckpt.CHECKPOINT_DIR, ckpt.FINAL if final else ckpt.LATEST)
    if world.is_main:
        state = ckpt.training_state(s["model"], s["optimizer"], step, cfg, merged, world)
        path = ckpt.save_checkpoints(state, cfg.output, final=final)
    return path
