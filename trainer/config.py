"""Training configuration: one frozen dataclass, loaded from YAML plus overrides.

Input: an optional YAML file (a flat mapping of ``TrainConfig`` field names, or the same
mapping under a top-level ``train:`` key) and a dict of overrides (from the CLI's flags and
``--set key=value``; string values are converted to the field's type).
Output: a validated ``TrainConfig``. Unknown keys and invalid values raise ``ValueError``
before anything is built or read.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import yaml

PRECISIONS = ("fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")
LOSSES = ("clip", "siglip")  # open_clip's ClipLoss / SigLipLoss
SAMPLE_WEIGHTS = ("none", "clip_score")
DEFAULT_MODEL = "configs/models/wit-tiny.json"


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; written to ``OUT/run_config.yaml``."""

    model: str = DEFAULT_MODEL  # open_clip model name, or path to an open_clip model JSON
    pretrained: str = ""  # open_clip tag or local checkpoint path; "" = random init
    shards: tuple[str, ...] = ()  # shard directories (each with NNNNN.tar + sizes.json)
    shard_weights: tuple[float, ...] = ()  # mixing weight per shards dir; () = by sample count
    batch_size: int = 64
    steps: int = 1000
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 20
    seed: int = 0
    workers: int = 0  # DataLoader workers; 0 = load in the training process (deterministic)
    output: str = "runs/train"
    log_every: int = 10
    save_every: int = 500  # steps between epoch_latest.pt saves; 0 = only at the end
    precision: str = "fp32"  # "fp32" | "bf16" (autocast; weights stay fp32)
    grad_clip: float = 1.0  # max grad norm; 0 = off
    image_size: Optional[int] = None  # override the model config's image size
    shuffle_buffer: int = 1000  # samples held for shuffling
    device: str = "auto"  # "auto" = cuda when available, else cpu
    loss: str = "clip"  # "clip" (ClipLoss) | "siglip" (SigLipLoss; the model gets a logit_bias)
    sample_weight: str = "none"  # "none" | "clip_score" (weight each pair by its json clip_score)
    accum_steps: int = 1  # micro-batches per optimizer step (contrastive batch = accum * batch)
    compile: bool = False  # torch.compile the model (inductor; minutes of compile on CPU)
    resume: str = ""  # "" | "latest" (OUTPUT/checkpoints/epoch_latest.pt) | a checkpoint path
    tensorboard: bool = True  # OUTPUT/tensorboard event files (needs the tensorboard package)

    def __post_init__(self) -> None:
        if isinstance(self.shards, (list, str)):
            shards = [self.shards] if isinstance(self.shards, str) else self.shards
            object.__setattr__(self, "shards", tuple(shards))
        if isinstance(self.shard_weights, list):
            object.__setattr__(self, "shard_weights", tuple(self.shard_weights))
        _validate(self)


def _validate(cfg: TrainConfig) -> None:
    problems = []
    for name in ("batch_size", "steps", "accum_steps"):
        if getattr(cfg, name) < 1:
            problems.append(f"{name} must be >= 1, got {getattr(cfg, name)}")
    for name in ("warmup_steps", "workers", "log_every", "save_every", "shuffle_buffer"):
        if getattr(cfg, name) < 0:
            problems.append(f"{name} must be >= 0, got {getattr(cfg, name)}")
    for name in ("lr", "weight_decay", "grad_clip"):
        if getattr(cfg, name) < 0:
            problems.append(f"{name} must be >= 0, got {getattr(cfg, name)}")
    if cfg.precision not in PRECISIONS:
        problems.append(f"precision must be one of {PRECISIONS}, got {cfg.precision!r}")
    if cfg.device not in DEVICES:
        problems.append(f"device must be one of {DEVICES}, got {cfg.device!r}")
    if cfg.image_size is not None and cfg.image_size < 1:
        problems.append(f"image_size must be >= 1 or null, got {cfg.image_size}")
    if not cfg.model:
        problems.append("model must be set")
    if cfg.loss not in LOSSES:
        problems.append(f"loss must be one of {LOSSES}, got {cfg.loss!r}")
    if cfg.sample_weight not in SAMPLE_WEIGHTS:
        problems.append(f"sample_weight must be one of {SAMPLE_WEIGHTS}, got {cfg.sample_weight!r}")
    elif cfg.sample_weight != "none" and cfg.loss != "clip":
        problems.append("sample_weight needs loss=clip (SigLipLoss takes no per-pair weights)")
    if cfg.shard_weights and len(cfg.shard_weights) != len(cfg.shards):
        problems.append(f"shard_weights has {len(cfg.shard_weights)} values for "
                        f"{len(cfg.shards)} shard directories")
    if any(w <= 0 for w in cfg.shard_weights):
        problems.append(f"shard_weights must be > 0, got {list(cfg.shard_weights)}")
    if problems:
        raise ValueError("invalid train config: " + "; ".join(problems))


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig)]


def load_train_config(path: Optional[str], overrides: Optional[Mapping[str, Any]] = None
                      ) -> TrainConfig:
    """``TrainConfig`` from YAML ``path`` (or defaults when None), then ``overrides``.

    Override values may be strings (``--set lr=3e-4``); they are converted to the field type.
    """
    values: dict[str, Any] = {}
    if path is not None:
        values.update(_read_yaml(path))
    for key, value in (overrides or {}).items():
        _check_known([key], source="overrides")
        values[key] = value
    hints = typing.get_type_hints(TrainConfig)
    converted = {k: _convert(k, v, hints[k]) for k, v in values.items()}
    return TrainConfig(**converted)


def _read_yaml(path: str) -> dict[str, Any]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"train config not found: {path}")
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if isinstance(data, dict) and set(data) == {"train"}:
        data = data["train"] or {}  # allow the section form of configs/base.yaml
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of train settings, got {type(data).__name__}")
    _check_known(list(data), source=path)
    return data


def _check_known(keys: list[str], source: str) -> None:
    known = set(field_names())
    unknown = sorted(str(k) for k in keys if k not in known)
    if unknown:
        raise ValueError(f"{source}: unknown train config key(s) {unknown}; "
                         f"valid keys: {sorted(known)}")


def _convert(name: str, value: Any, hint: Any) -> Any:
    """``value`` as the type of field ``name``; strings are parsed (they come from --set)."""
    origin = typing.get_origin(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if origin is typing.Union:  # Optional[X]
        if value is None or (isinstance(value, str) and value.lower() in ("", "none", "null")):
            return None
        return _convert(name, value, args[0])
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{name}: expected a list, got {value!r}")
        return tuple(_convert(name, v, args[0]) for v in value)
    return _scalar(name, value, hint)


_BOOLS = {"true": True, "yes": True, "on": True, "1": True,
          "false": False, "no": False, "off": False, "0": False}


def _scalar(name: str, value: Any, hint: type) -> Any:
    """str, bool, int or float (the scalar field types); YAML may give 3e-4 as a string."""
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _BOOLS:
            return _BOOLS[value.strip().lower()]
        raise ValueError(f"{name}: expected true or false, got {value!r}")
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{name}: expected a string, got {value!r}")
        return value
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected {hint.__name__}, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: expected {hint.__name__}, got {value!r}") from e
    if hint is int:
        if not number.is_integer():
            raise ValueError(f"{name}: expected an integer, got {value!r}")
        return int(number)
    return number
