"""Contrastive losses for the loop: open_clip's ``ClipLoss`` and ``SigLipLoss``, plus per-pair
weights for ClipLoss.

Input: the loss name ("clip" | "siglip"), this process's rank and world size; at each step the
model's features, ``logit_scale`` (and ``logit_bias``), and optionally one weight per local pair.
Output: a scalar loss. With ``world_size > 1`` features are gathered across ranks (ClipLoss with
``local_loss`` and ``gather_with_grad``, as open_clip_train's recommended flags; SigLipLoss with
its neighbour exchange), so every rank's pairs are negatives for every other rank's.
Nothing is dropped here.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss, SigLipLoss  # SigLipLoss is not re-exported by open_clip


class WeightedClipLoss(ClipLoss):
    """``ClipLoss`` whose per-pair cross-entropies can be weighted.

    Without weights it is exactly ``ClipLoss``. With weights ``w`` (one per local pair):
    ``sum_i w_i (CE_image_i + CE_text_i) / (2 sum_i w_i)``; logits, labels and the cross-rank
    gather are the library's (``get_logits``, ``get_ground_truth``).
    """

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor,
                logit_scale: torch.Tensor, logit_bias: Optional[torch.Tensor] = None,
                weights: Optional[torch.Tensor] = None, output_dict: bool = False) -> Any:
        if weights is None:
            return super().forward(image_features, text_features, logit_scale, logit_bias,
                                   output_dict=output_dict)
        if self.world_size > 1 and not self.local_loss:
            raise ValueError("weighted ClipLoss across ranks needs local_loss=True")
        logits_per_image, logits_per_text = self.get_logits(
            image_features, text_features, logit_scale, logit_bias=logit_bias)
        labels = self.get_ground_truth(image_features.device, logits_per_image.shape[0])
        per_pair = (F.cross_entropy(logits_per_image, labels, reduction="none")
                    + F.cross_entropy(logits_per_text, labels, reduction="none"))
        weights = weights.to(per_pair.dtype)
        total = (weights * per_pair).sum() / (2 * weights.sum().clamp_min(1e-12))
        return {"contrastive_loss": total} if output_dict else total


def make_loss(name: str, rank: int = 0, world_size: int = 1) -> torch.nn.Module:
    """The open_clip loss for ``name``, set up for ``world_size`` ranks."""
    if name == "clip":
        distributed = world_size > 1
        return WeightedClipLoss(local_loss=distributed, gather_with_grad=distributed,
                                cache_labels=True, rank=rank, world_size=world_size)
    if name == "siglip":
        return SigLipLoss(cache_labels=True, rank=rank, world_size=world_size)
    raise ValueError(f"unknown loss {name!r}; expected 'clip' or 'siglip'")


def compute_loss(loss_fn: torch.nn.Module, out: dict[str, torch.Tensor],
                 weights: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``loss_fn`` on a model output dict (image/text features, logit_scale, logit_bias)."""
    args = (out["image_features"], out["text_features"], out["logit_scale"])
    if isinstance(loss_fn, SigLipLoss):
        if out.get("logit_bias") is None:
            raise ValueError("SigLipLoss needs a model with a logit_bias (create it with "
                             "trainer.model.create_model(..., siglip=True))")
        return loss_fn(*args, out["logit_bias"])
    if weights is not None:
        return loss_fn(*args, out.get("logit_bias"), weights=weights)
    return loss_fn(*args, out.get("logit_bias"))


def sample_weights(metas: Sequence[dict], mode: str) -> Optional[torch.Tensor]:
    """Per-pair weights from the samples' json metadata; ``None`` for mode "none".

    "clip_score": the pair's ``clip_score`` (clamped at 0; a missing score counts as the batch
    mean), rescaled so the weights of a batch average 1 (the loss keeps its scale).
    """
    if mode == "none":
        return None
    if mode != "clip_score":
        raise ValueError(f"unknown sample_weight {mode!r}")
    scores = [m.get("clip_score") for m in metas]
    known = [max(0.0, float(s)) for s in scores if isinstance(s, (int, float))]
    fill = sum(known) / len(known) if known else 1.0
    values = torch.tensor([max(0.0, float(s)) if isinstance(s, (int, float)) else fill
                           for s in scores], dtype=torch.float32)
    mean = float(values.mean())
    return values / mean if mean > 0 else torch.ones_like(values)
