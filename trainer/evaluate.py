"""Small evaluations of an open_clip model: zero-shot accuracy, pair scores, in-batch retrieval.

Input: a model with ``encode_image``/``encode_text(..., normalize=True)`` (any open_clip CLIP),
its tokenizer and image transform, and PIL images with labels or captions, or shard dirs.
Output: floats, per-pair cosine similarities (numpy), or a metrics dict for ``wit eval``.
All run under ``torch.no_grad()`` with the model in eval mode (its mode is restored after).
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from open_clip.zero_shot_classifier import build_zero_shot_classifier

from trainer.data import make_loader


@contextlib.contextmanager
def _inference(model: torch.nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def encode_images(model: torch.nn.Module, preprocess: Callable, images: Sequence,
                  batch_size: int = 64) -> torch.Tensor:
    """L2-normalised image embeddings ``[N, D]`` of PIL images."""
    device = _device(model)
    with _inference(model):
        chunks = [model.encode_image(torch.stack([preprocess(im) for im in
                                                  images[i:i + batch_size]]).to(device),
                                     normalize=True)
                  for i in range(0, len(images), batch_size)]
    return torch.cat(chunks).float()


def encode_texts(model: torch.nn.Module, tokenizer: Callable, texts: Sequence[str],
                 batch_size: int = 256) -> torch.Tensor:
    """L2-normalised text embeddings ``[N, D]``."""
    device = _device(model)
    with _inference(model):
        chunks = [model.encode_text(tokenizer(list(texts[i:i + batch_size])).to(device),
                                    normalize=True)
                  for i in range(0, len(texts), batch_size)]
    return torch.cat(chunks).float()


def zero_shot_accuracy(model: torch.nn.Module, tokenizer: Callable, preprocess: Callable,
                       images: Sequence, labels: Sequence[int], classnames: Sequence[str],
                       templates: Sequence[str]) -> float:
    """Top-1 accuracy of classifying ``images`` by prompts ``template.format(classname)``
    (open_clip's zero-shot classifier: per-class mean of normalised prompt embeddings)."""
    if len(images) != len(labels) or not images:
        raise ValueError(f"need as many labels as images (>0): {len(images)} vs {len(labels)}")
    with _inference(model):
        classifier = build_zero_shot_classifier(model, tokenizer, list(classnames),
                                                list(templates), device=_device(model))
    features = encode_images(model, preprocess, images)
    predicted = (features @ classifier.float()).argmax(dim=1).cpu()
    return float((predicted == torch.as_tensor(list(labels))).float().mean())


def score_pairs(model: torch.nn.Module, tokenizer: Callable, preprocess: Callable,
                images: Sequence, captions: Sequence[str]) -> np.ndarray:
    """Cosine similarity of each (image, caption) pair, float32 ``[N]``."""
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    if not images:
        return np.zeros(0, dtype=np.float32)
    image_features = encode_images(model, preprocess, images)
    text_features = encode_texts(model, tokenizer, captions)
    return (image_features * text_features).sum(dim=1).cpu().numpy().astype(np.float32)


def batch_recall(image_features: torch.Tensor, text_features: torch.Tensor,
                 ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Image->text and text->image recall@k within one batch of matched pairs (hits, summed).

    An item's rank counts only strictly better-scored wrong items, so exact ties (the same
    caption twice in a batch gives identical text embeddings) count as hits.
    """
    similarity = image_features @ text_features.T
    target = torch.arange(len(similarity), device=similarity.device)
    hits = {}
    for direction, sims in (("image_to_text", similarity), ("text_to_image", similarity.T)):
        ranks = (sims > sims[target, target][:, None]).sum(dim=1)  # better-scored wrong items
        for k in ks:
            hits[f"{direction}_r{k}"] = float((ranks < k).sum())
    return hits


def evaluate_shards(model: torch.nn.Module, preprocess: Callable, tokenizer: Callable,
                    shard_dirs: Sequence[str], batch_size: int = 64) -> dict[str, float]:
    """One pass over ``shard_dirs``: mean matched-pair CLIP score and in-batch recall@1/5
    (so recall depends on ``batch_size``; report it with the numbers)."""
    loader = make_loader(shard_dirs, preprocess, tokenizer, batch_size, workers=0,
                         resampled=False, shuffle_buffer=0)
    device = _device(model)
    totals: dict[str, float] = {}
    samples, score_sum = 0, 0.0
    with _inference(model):
        for images, texts in loader:
            image_features = model.encode_image(images.to(device), normalize=True).float()
            text_features = model.encode_text(texts.to(device), normalize=True).float()
            score_sum += float((image_features * text_features).sum())
            for key, value in batch_recall(image_features, text_features).items():
                totals[key] = totals.get(key, 0.0) + value
            samples += len(images)
    if samples == 0:
        raise ValueError(f"no readable samples in {list(shard_dirs)}")
    metrics = {"samples": samples, "batch_size": batch_size,
               "skipped_samples": loader.skipped.count, "mean_clip_score": score_sum / samples}
    metrics.update({k: v / samples for k, v in sorted(totals.items())})
    return metrics
