"""Evaluations of an open_clip model: zero-shot classification, pair scores, retrieval.

Input: a model with ``encode_image``/``encode_text(..., normalize=True)`` (any open_clip CLIP),
its tokenizer and image transform, and PIL images with labels or captions, or shard dirs.
Output: floats, per-pair cosine similarities (numpy), or metrics dicts for ``wit eval``:
zero-shot top-1/top-5 accuracy (the CLIP recipe: class embedding = mean of its normalised prompt
embeddings) and image->text / text->image recall@1/5/10 over a whole held-out set.
All run under ``torch.no_grad()`` with the model in eval mode (its mode is restored after).
Samples the loader cannot read are skipped and counted (``skipped_samples``).
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


def zero_shot_logits(model: torch.nn.Module, tokenizer: Callable, preprocess: Callable,
                     images: Sequence, classnames: Sequence[str],
                     templates: Sequence[str]) -> torch.Tensor:
    """Cosine similarity ``[N images, C classes]`` to prompts ``template.format(classname)``
    (open_clip's zero-shot classifier: per-class mean of normalised prompt embeddings)."""
    with _inference(model):
        classifier = build_zero_shot_classifier(model, tokenizer, list(classnames),
                                                list(templates), device=_device(model))
    return (encode_images(model, preprocess, images) @ classifier.float()).cpu()


def topk_accuracy(logits: torch.Tensor, labels: Sequence[int],
                  ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """``{"top1": ..., "top5": ...}``: share of rows whose label is among the k best classes
    (k larger than the number of classes is left out)."""
    target = torch.as_tensor(list(labels))
    order = logits.argsort(dim=1, descending=True)
    return {f"top{k}": float((order[:, :k] == target[:, None]).any(dim=1).float().mean())
            for k in ks if k <= logits.shape[1]}


def zero_shot_accuracy(model: torch.nn.Module, tokenizer: Callable, preprocess: Callable,
                       images: Sequence, labels: Sequence[int], classnames: Sequence[str],
                       templates: Sequence[str]) -> float:
    """Top-1 accuracy of classifying ``images`` among ``classnames`` (see zero_shot_logits)."""
    if len(images) != len(labels) or not images:
        raise ValueError(f"need as many labels as images (>0): {len(images)} vs {len(labels)}")
    logits = zero_shot_logits(model, tokenizer, preprocess, images, classnames, templates)
    return topk_accuracy(logits, labels, ks=(1,))["top1"]


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


def retrieval_recall(image_features: torch.Tensor, text_features: torch.Tensor,
                     ks: Sequence[int] = (1, 5, 10), chunk: int = 4096) -> dict[str, float]:
    """Image->text and text->image recall@k over a whole set of matched pairs (row i of each).

    An item's rank counts only strictly better-scored wrong items, so exact ties (the same
    caption twice in the set gives identical text embeddings) count as hits. Computed in
    chunks of ``chunk`` rows: memory ``chunk x N``.
    """
    if len(image_features) != len(text_features) or len(image_features) == 0:
        raise ValueError(f"need matched pairs: {len(image_features)} images, "
                         f"{len(text_features)} texts")
    n = len(image_features)
    matched = (image_features * text_features).sum(dim=1)
    metrics: dict[str, float] = {}
    for direction, queries, keys in (("image_to_text", image_features, text_features),
                                     ("text_to_image", text_features, image_features)):
        ranks = torch.cat([(queries[i:i + chunk] @ keys.T > matched[i:i + chunk, None]).sum(1)
                           for i in range(0, n, chunk)])
        for k in ks:
            metrics[f"{direction}_r{k}"] = float((ranks < k).float().mean())
    return metrics


def encode_shards(model: torch.nn.Module, preprocess: Callable, tokenizer: Callable,
                  shard_dirs: Sequence[str], batch_size: int = 64
                  ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Normalised ``(image_features, text_features, skipped)`` of every pair in the shards."""
    loader = make_loader(shard_dirs, preprocess, tokenizer, batch_size, workers=0,
                         resampled=False, shuffle_buffer=0)
    device = _device(model)
    images_out, texts_out = [], []
    with _inference(model):
        for images, texts in loader:
            images_out.append(model.encode_image(images.to(device), normalize=True).float())
            texts_out.append(model.encode_text(texts.to(device), normalize=True).float())
    if not images_out:
        raise ValueError(f"no readable samples in {list(shard_dirs)}")
    return torch.cat(images_out).cpu(), torch.cat(texts_out).cpu(), loader.skipped.count


def evaluate_shards(model: torch.nn.Module, preprocess: Callable, tokenizer: Callable,
                    shard_dirs: Sequence[str], batch_size: int = 64) -> dict[str, float]:
    """Mean matched-pair CLIP score and retrieval recall@1/5/10 over all pairs of
    ``shard_dirs`` (each image against every caption of the set, and back)."""
    image_features, text_features, skipped = encode_shards(model, preprocess, tokenizer,
                                                           shard_dirs, batch_size)
    metrics = {"samples": len(image_features), "skipped_samples": skipped,
               "mean_clip_score": float((image_features * text_features).sum(1).mean())}
    metrics.update(retrieval_recall(image_features, text_features))
    return metrics
