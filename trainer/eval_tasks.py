"""``wit eval`` tasks: zero-shot classification from a YAML, retrieval on held-out shards.

Input:
    a zero-shot task YAML (``configs/eval/*.yaml``)::

        name: sample_shapes
        classes: [circle, square, ...]          # class names, put into the templates
        templates: ["a photo of a {}.", ...]    # the CLIP prompt ensemble
        images: path/to/folder                  # optional; relative to the YAML's directory

    labelled images in the ImageFolder layout: ``IMAGES/<class>/*.jpg|jpeg|png|webp`` (a class
    folder may spell spaces as ``_``); held-out shard directories for retrieval; or a folder of
    captioned images for retrieval (``DIR/<name>.jpg`` beside ``DIR/<name>.txt``, whose first
    line is the caption: bench/tuxpaint_pairs.py writes Tux Paint's stamps so).
Output: a JSON-ready dict: ``zeroshot`` (top1, top5, images, classes, per-class top1),
``retrieval`` (recall@1/5/10 both ways, mean matched-pair score, samples).
Dropped: image files that do not decode are skipped and counted (``skipped_images``); in a
pairs folder, an image without a caption file, or with an empty one, is skipped and counted.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import torch
import yaml
from PIL import Image, UnidentifiedImageError

from trainer.evaluate import (encode_images, encode_texts, evaluate_shards, retrieval_recall, topk_accuracy,
                              zero_shot_logits)

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


@dataclass(frozen=True)
class ZeroShotTask:
    name: str
    classes: tuple[str, ...]
    templates: tuple[str, ...]
    images: str = ""  # ImageFolder directory ("" = give it on the command line)


def load_task(path: str) -> ZeroShotTask:
    """A ``ZeroShotTask`` from YAML; unknown keys, no classes or a template without ``{}`` are
    errors."""
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping with classes and templates")
    unknown = sorted(set(data) - {"name", "classes", "templates", "images"})
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; valid: name, classes, templates, "
                         "images")
    classes = [str(c) for c in data.get("classes") or []]
    templates = [str(t) for t in data.get("templates") or ["{}"]]
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValueError(f"{path}: need at least 2 distinct classes, got {classes}")
    bad = [t for t in templates if "{}" not in t]
    if bad:
        raise ValueError(f"{path}: templates must contain '{{}}' for the class name: {bad}")
    images = str(data.get("images") or "")
    if images and not os.path.isabs(images):
        images = os.path.join(os.path.dirname(os.path.abspath(path)), images)
    name = str(data.get("name") or os.path.splitext(os.path.basename(path))[0])
    return ZeroShotTask(name, tuple(classes), tuple(templates), images)


def image_folder(root: str, classes: Sequence[str]) -> list[tuple[str, int]]:
    """``(path, label)`` of every image under ``root/<class>/``, in class then name order."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"zero-shot image folder not found: {root}")
    items: list[tuple[str, int]] = []
    for label, name in enumerate(classes):
        folder = next((os.path.join(root, n) for n in (name, name.replace(" ", "_"))
                       if os.path.isdir(os.path.join(root, n))), None)
        if folder is None:
            logger.warning("no folder for class %r under %s", name, root)
            continue
        items += [(os.path.join(folder, f), label) for f in sorted(os.listdir(folder))
                  if f.lower().endswith(IMAGE_SUFFIXES)]
    if not items:
        raise ValueError(f"no images for any of the {len(classes)} classes under {root} "
                         "(expected ROOT/<class name>/*.jpg)")
    return items


def _load_images(items: list[tuple[str, int]]) -> tuple[list[Image.Image], list[int], int]:
    images, labels, skipped = [], [], 0
    for path, label in items:
        try:
            with Image.open(path) as im:
                images.append(im.convert("RGB"))
        except (OSError, UnidentifiedImageError) as e:
            skipped += 1
            logger.warning("skipping unreadable image %s: %s", path, e)
            continue
        labels.append(label)
    return images, labels, skipped


def run_zero_shot(model: torch.nn.Module, tokenizer: Callable, preprocess: Callable,
                  task: ZeroShotTask, images_dir: Optional[str] = None) -> dict[str, Any]:
    """Zero-shot top-1/top-5 of ``task`` on its labelled images."""
    root = images_dir or task.images
    if not root:
        raise ValueError(f"task {task.name}: no images folder (give --images DIR or `images:`)")
    images, labels, skipped = _load_images(image_folder(root, task.classes))
    if not images:
        raise ValueError(f"task {task.name}: none of the images under {root} could be read")
    logits = zero_shot_logits(model, tokenizer, preprocess, images, task.classes,
                              task.templates)
    result: dict[str, Any] = {"task": task.name, "images": len(images), "classes":
                              len(task.classes), "templates": len(task.templates),
                              "skipped_images": skipped}
    result.update(topk_accuracy(logits, labels))
    predicted, target = logits.argmax(dim=1), torch.as_tensor(labels)
    result["per_class_top1"] = {
        name: round(float((predicted[target == c] == c).float().mean()), 4)
        for c, name in enumerate(task.classes) if bool((target == c).any())}
    return result


def run_retrieval(model: torch.nn.Module, tokenizer: Callable, preprocess: Callable,
                  shard_dirs: Sequence[str], batch_size: int = 64) -> dict[str, Any]:
    """Recall@1/5/10 both ways and the mean matched-pair score over the held-out shards."""
    return evaluate_shards(model, preprocess, tokenizer, shard_dirs, batch_size=batch_size)


def load_pairs(root: str) -> tuple[list[str], list[str], int]:
    """``(image paths, captions, skipped)`` of a captioned-image folder, in name order."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"retrieval pairs folder not found: {root}")
    paths, captions, skipped = [], [], 0
    for name in sorted(os.listdir(root)):
        stem, ext = os.path.splitext(name)
        if ext.lower() not in IMAGE_SUFFIXES:
            continue
        caption = ""
        text_path = os.path.join(root, stem + ".txt")
        if os.path.isfile(text_path):
            with open(text_path, encoding="utf-8", errors="replace") as fh:
                caption = fh.readline().strip()
        if not caption:
            skipped += 1
            continue
        paths.append(os.path.join(root, name))
        captions.append(caption)
    if not paths:
        raise ValueError(f"no captioned images under {root} (expected NAME.jpg beside NAME.txt)")
    return paths, captions, skipped


def run_pair_retrieval(model: torch.nn.Module, tokenizer: Callable, preprocess: Callable,
                       root: str) -> dict[str, Any]:
    """Image<->caption recall@1/5/10 over a captioned-image folder (each image against every
    caption of the folder, and back)."""
    paths, captions, skipped = load_pairs(root)
    images, readable, unreadable = _load_images([(path, i) for i, path in enumerate(paths)])
    skipped += unreadable
    kept_captions = [captions[i] for i in readable]
    if len(images) < 2:
        raise ValueError(f"retrieval over {root}: need at least 2 readable captioned images")
    image_features = encode_images(model, preprocess, images)
    text_features = encode_texts(model, tokenizer, kept_captions)
    result: dict[str, Any] = {"task": os.path.basename(os.path.normpath(root)), "pairs": len(images),
                              "skipped_images": skipped,
                              "mean_clip_score": float((image_features * text_features).sum(1).mean())}
    result.update(retrieval_recall(image_features, text_features))
    return result
