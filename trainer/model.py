"""open_clip model factory for training, evaluation and scoring.

Input: a model name known to open_clip (``ViT-B-32``) or a path to an open_clip model JSON
(``configs/models/wit-tiny.json``: keys ``embed_dim``, ``vision_cfg``, ``text_cfg``), and
optional weights: an open_clip pretrained tag or a local checkpoint file.
Output: ``(model, preprocess_train, preprocess_val, tokenizer)`` from open_clip. For SigLIP
training, or weights that carry a ``logit_bias``, the model gets one (initialised as
open_clip_train does for ``--siglip`` unless the model config sets ``init_logit_bias``).
Missing weights fail here, at startup, with a message saying how to supply them.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Callable, Optional, Union

import open_clip
import torch

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
_REQUIRED_KEYS = ("embed_dim", "vision_cfg", "text_cfg")
SIGLIP_INIT = {"init_logit_scale": math.log(10), "init_logit_bias": -10.0}  # open_clip_train's


def resolve_model_config(path: str) -> Path:
    """An open_clip model JSON: as given (relative to the cwd), else relative to the project
    root, so ``configs/models/wit-tiny.json`` works from any directory."""
    candidates = [Path(path)]
    if not Path(path).is_absolute():
        candidates.append(PROJECT_ROOT / path)
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise FileNotFoundError(f"open_clip model config not found: {path} "
                            f"(looked in {', '.join(str(c) for c in candidates)})")


def read_model_config(path: str):
    """``(resolved path, config dict)`` of an open_clip model JSON; ValueError when it lacks the keys
    open_clip needs (open_clip silently skips such a file; say so instead)."""
    resolved = resolve_model_config(path)
    with open(resolved, encoding="utf-8") as fh:
        cfg = json.load(fh)
    missing = [k for k in _REQUIRED_KEYS if not isinstance(cfg, dict) or k not in cfg]
    if missing:
        raise ValueError(f"{resolved} is not an open_clip model config: missing {missing}")
    return resolved, cfg


def register_model_config(path: str) -> str:
    """Register an open_clip model JSON; returns its name (the file stem)."""
    resolved, cfg = read_model_config(path)
    name = resolved.stem
    existing = open_clip.get_model_config(name)
    if existing == cfg:
        return name  # already registered (re-adding would grow open_clip's search path)
    if existing is not None:
        logger.info("model config %s replaces an earlier config named %r", resolved, name)
    open_clip.add_model_config(resolved)
    return name


def model_name(model: str) -> str:
    """The open_clip name for ``model``, registering it first when it is a JSON path."""
    return register_model_config(model) if model.endswith(".json") else model


def check_pretrained(name: str, pretrained: str) -> None:
    """Fail now, clearly, when ``pretrained`` is neither a known tag nor an existing file."""
    if not pretrained or open_clip.get_pretrained_cfg(name, pretrained):
        return
    if os.path.isfile(pretrained):
        return
    tags = open_clip.list_pretrained_tags_by_model(name)
    raise FileNotFoundError(
        f"pretrained weights {pretrained!r} for model {name!r} not found: it is neither a local "
        f"file nor an open_clip tag for this model (known tags: {tags or 'none'}). Supply a local "
        "checkpoint (a .pt/.pth/.bin/.safetensors holding an open_clip state_dict, e.g. a "
        "wit-train checkpoints/final.pt), or a tag whose weights are already in the Hugging Face "
        "cache (download them on a connected machine and copy HF_HOME), or '' for random init.")


def has_logit_bias(path: str) -> bool:
    """Whether a local open_clip checkpoint holds a ``logit_bias`` (a SigLIP-trained model);
    read memory-mapped, with ``weights_only``."""
    if not path.endswith((".pt", ".pth", ".bin")) or not os.path.isfile(path):
        return False  # safetensors/npz/tags: open_clip's own config decides
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (RuntimeError, OSError, ValueError) as e:  # old non-zip format cannot be mmapped
        logger.debug("could not peek into %s: %s", path, e)
        return False
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else {}
    return any(k.split(".")[-1] == "logit_bias" for k in state)


def _model_kwargs(name: str, pretrained: str, siglip: bool) -> dict[str, Any]:
    """SigLIP init (open_clip_train's --siglip values) unless the model config has its own."""
    cfg = open_clip.get_model_config(name) or {}
    if "init_logit_bias" in cfg or not (siglip or has_logit_bias(pretrained)):
        return {}
    return dict(SIGLIP_INIT)


def create_model(model: str, pretrained: str = "", device: Union[str, torch.device] = "cpu",
                 image_size: Optional[int] = None, siglip: bool = False
                 ) -> tuple[torch.nn.Module, Callable, Callable, Callable]:
    """``(model, preprocess_train, preprocess_val, tokenizer)`` for an open_clip model.

    The model is fp32 (mixed precision is the training loop's autocast) and returns dicts.
    ``siglip``: give the model a ``logit_bias`` for ``SigLipLoss``.
    """
    name = model_name(model)
    check_pretrained(name, pretrained)
    kwargs: dict[str, Any] = {"device": device, "output_dict": True}
    kwargs.update(_model_kwargs(name, pretrained, siglip))
    if image_size is not None:
        kwargs["force_image_size"] = image_size
    is_tag = bool(pretrained) and bool(open_clip.get_pretrained_cfg(name, pretrained))
    try:
        net, preprocess_train, preprocess_val = open_clip.create_model_and_transforms(
            name, pretrained=pretrained or None, **kwargs)
    except RuntimeError as e:
        if not is_tag:
            raise
        raise RuntimeError(
            f"could not get weights for {name}/{pretrained}: {e}. Offline, download them on a "
            "connected machine (open_clip.create_model_and_transforms(..., pretrained=tag)) and "
            "copy the Hugging Face cache (HF_HOME), or pass the checkpoint file path.") from e
    tokenizer = open_clip.get_tokenizer(name)
    logger.info("model %s (%s weights): %.2fM parameters", name, pretrained or "random",
                count_parameters(net) / 1e6)
    return net, preprocess_train, preprocess_val, tokenizer


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
