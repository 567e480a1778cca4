"""The bundled offline scorer: a tiny open_clip model trained by our own trainer.

Input: nothing but a seed. Output: ``models/wit-tiny-scorer.pt`` (an open_clip
state dict for ``configs/models/wit-tiny.json``, stored in fp16 to halve the
file; open_clip loads it into the fp32 model) and ``models/wit-tiny-scorer.json``
(how it was made and its ROC AUC on the sample web's matched vs mismatched pairs).

The training scenes are generated from a different seed than the sample web and
go through the pipeline's own resize, so the scorer sees what ScoreClip sees.
Reproduce with ``make sample-model`` (``wit sample train-scorer``).
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import tempfile
import time
from dataclasses import replace
from typing import Sequence

from PIL import Image

from pipeline import shard_format
from pipeline.config import CurateConfig
from pipeline.sample.scenes import caption_for, encode_jpeg, random_specs, render_scene
from pipeline.sample.site import generate_site
from pipeline.specs import resize_spec
from transforms.resize import resize_image

log = logging.getLogger(__name__)

MODEL_CONFIG = "configs/models/wit-tiny.json"
CHECKPOINT = "wit-tiny-scorer.pt"
TRAIN_SEED = 1009  # the sample web uses seed 0: different scenes, different jitter
SCORER_RESIZE = replace(resize_spec(CurateConfig()), image_size=128, mode="border")  # as configs/sample.yaml
DEFAULTS = {"samples": 12000, "steps": 800, "batch_size": 128, "lr": 2e-3, "warmup_steps": 100}


def write_training_shards(directory: str, n: int, seed: int = TRAIN_SEED, per_shard: int = 2000) -> None:
    """``n`` generated (scene, caption) pairs as webdataset shards + sizes.json."""
    rng = random.Random(seed)
    os.makedirs(directory, exist_ok=True)
    samples, sizes = [], {}
    for i, spec in enumerate(random_specs(seed, n)):
        w, h = rng.randint(120, 320), rng.randint(120, 320)
        raw = encode_jpeg(render_scene(spec, (w, h), seed=seed * 100003 + i), quality=rng.randint(70, 95))
        image = resize_image(raw, SCORER_RESIZE).data
        samples.append({"key": f"{i:08x}", "ext": "jpg", "image": image, "caption": caption_for(spec, rng),
                        "meta": {"spec": [spec.shape, spec.colour, spec.background, spec.count]}})
        if len(samples) == per_shard or i == n - 1:
            name = shard_format.shard_name(len(sizes))
            with open(os.path.join(directory, name + ".tar"), "wb") as fh:
                fh.write(shard_format.tar_bytes(samples))
            sizes[name + ".tar"] = len(samples)
            samples = []
    with open(os.path.join(directory, shard_format.SIZES_FILE), "wb") as fh:
        fh.write(shard_format.sizes_json(sizes))


def roc_auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """Probability a random positive outscores a random negative (ties count half)."""
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / max(1, len(positives) * len(negatives))


def sample_web_scores(model: str, pretrained: str, seed: int = 0) -> dict[str, list[float]]:
    """Scores of the sample web's matched and mismatched pairs, scored as the pipeline does."""
    from dataclasses import replace

    from pipeline.config import CurateConfig
    from pipeline.specs import scorer_spec
    from transforms.clip_model import cosine_scores, load_scorer

    site = generate_site(seed=seed)
    scorer = load_scorer(replace(scorer_spec(CurateConfig()), model=model, pretrained=pretrained, device="cpu"))
    out: dict[str, list[float]] = {"matched": [], "mismatched": []}
    for kind in out:
        entries = [e for e in site.manifest if e.kind == kind]
        images = []
        for e in entries:
            resized = resize_image(site.resources[e.image_path].body, SCORER_RESIZE).data
            images.append(Image.open(io.BytesIO(resized)).convert("RGB"))
        out[kind] = cosine_scores(scorer, images, [e.alt for e in entries])
    return out


def train_sample_scorer(output_dir: str = "models", steps: int | None = None,
                        samples: int | None = None) -> dict:
    """Generate scenes, train wit-tiny on them, save the fp16 checkpoint and its report."""
    import torch

    from pipeline.run import resolve_project_path
    from trainer.config import TrainConfig
    from trainer.loop import train

    steps = steps or DEFAULTS["steps"]
    n = samples or DEFAULTS["samples"]
    model_cfg = resolve_project_path(MODEL_CONFIG)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="wit-scorer-") as work:
        shards = os.path.join(work, "shards")
        write_training_shards(shards, n)
        cfg = TrainConfig(model=model_cfg, shards=(shards,), steps=steps, batch_size=DEFAULTS["batch_size"],
                          lr=DEFAULTS["lr"], warmup_steps=DEFAULTS["warmup_steps"], seed=TRAIN_SEED,
                          output=os.path.join(work, "train"), save_every=0, log_every=50)
        result = train(cfg)
        state = torch.load(result.checkpoint_path, map_location="cpu", weights_only=True)["state_dict"]
    os.makedirs(output_dir, exist_ok=True)
    checkpoint = os.path.join(output_dir, CHECKPOINT)
    torch.save({"state_dict": {k: v.half() if v.is_floating_point() else v for k, v in state.items()}},
               checkpoint)
    scores = sample_web_scores(model_cfg, checkpoint)
    report = {
        "model": MODEL_CONFIG, "checkpoint": CHECKPOINT, "train_seed": TRAIN_SEED, "train_samples": n,
        "steps": steps, "batch_size": DEFAULTS["batch_size"], "final_loss": round(result.final_loss, 4),
        "auc_sample_web": round(roc_auc(scores["matched"], scores["mismatched"]), 4),
        "matched_min": round(min(scores["matched"]), 4), "mismatched_max": round(max(scores["mismatched"]), 4),
        "train_seconds": round(time.monotonic() - start, 1), "command": "make sample-model",
    }
    with open(os.path.join(output_dir, "wit-tiny-scorer.json"), "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2)
    log.info("scorer report: %s", report)
    return {"checkpoint": checkpoint, "auc": report["auc_sample_web"], "report": report}
