"""trainer.losses: open_clip's losses, per-pair weights, clip_score weighting."""

import math

import pytest
import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss, SigLipLoss

from trainer.losses import WeightedClipLoss, compute_loss, make_loss, sample_weights


def _features(n=6, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = F.normalize(torch.randn(n, d, generator=g), dim=-1)
    text = F.normalize(torch.randn(n, d, generator=g), dim=-1)
    return image, text, torch.tensor(10.0)


def test_unweighted_and_uniform_weights_equal_clip_loss():
    image, text, scale = _features()
    reference = ClipLoss()(image, text, scale)
    loss = WeightedClipLoss()
    assert torch.allclose(loss(image, text, scale), reference)
    assert torch.allclose(loss(image, text, scale, weights=torch.full((6,), 2.0)), reference)


def test_weights_scale_each_pairs_cross_entropies():
    image, text, scale = _features()
    weights = torch.tensor([1.0, 0.0, 2.0, 1.0, 0.0, 1.0])
    logits = scale * image @ text.T
    labels = torch.arange(6)
    per_pair = (F.cross_entropy(logits, labels, reduction="none")
                + F.cross_entropy(logits.T, labels, reduction="none"))
    expected = (weights * per_pair).sum() / (2 * weights.sum())
    assert torch.allclose(WeightedClipLoss()(image, text, scale, weights=weights), expected)


def test_make_loss_and_compute_loss():
    assert isinstance(make_loss("clip"), WeightedClipLoss)
    distributed = make_loss("clip", rank=1, world_size=2)
    assert distributed.local_loss and distributed.gather_with_grad and distributed.rank == 1
    siglip = make_loss("siglip")
    assert isinstance(siglip, SigLipLoss)
    image, text, scale = _features()
    out = {"image_features": image, "text_features": text, "logit_scale": scale}
    with pytest.raises(ValueError, match="logit_bias"):
        compute_loss(siglip, out)
    value = compute_loss(siglip, {**out, "logit_bias": torch.tensor(-10.0)})
    assert torch.isfinite(value)
    assert torch.allclose(compute_loss(make_loss("clip"), out), ClipLoss()(image, text, scale))
    with pytest.raises(ValueError):
        make_loss("triplet")


def test_sample_weights_from_clip_score():
    assert sample_weights([{}], "none") is None
    weights = sample_weights([{"clip_score": 0.2}, {"clip_score": 0.6}, {}, {"clip_score": -1}],
                             "clip_score")
    # missing -> the batch mean of the known (0.2, 0.6, 0.0) = 0.2667; negative -> 0
    raw = torch.tensor([0.2, 0.6, 0.8 / 3, 0.0])
    assert torch.allclose(weights, raw / raw.mean()) and math.isclose(float(weights.mean()), 1)
    assert torch.equal(sample_weights([{"clip_score": None}], "clip_score"), torch.ones(1))
    with pytest.raises(ValueError):
        sample_weights([{}], "caption_length")
