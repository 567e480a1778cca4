"""What curation buys: the same tiny CLIP trained on the sample web filtered vs unfiltered.

Serves the sample web (pipeline.sample) on 127.0.0.1 and curates it twice:

  filtered:    configs/sample.yaml as it is (caption and image rules, bundled CLIP scorer
               with its threshold, dedupe)
  unfiltered:  the same with score.enabled=false and the caption/image rules opened as far as
               the config allows (no length limits, no placeholder or navigation lists, no
               boilerplate rule, min_side 1, max_aspect 1000; empty, URL and filename captions
               are still dropped: they are not configurable). Fetch policy (robots, noai) and
               dedupe are the same in both: they are not quality filters.

then trains configs/models/wit-tiny.json on each with the same steps, batch and seeds, and
evaluates zero-shot on held-out images rendered by pipeline.sample.scenes from a seed the sample
web does not use, resized as the pipeline resizes: 40 classes "a {colour} {shape}"
(configs/eval/sample_colour_shapes.yaml), plus shape (5) and colour (8) tasks. Prints the
accuracies of both arms and the gap (target: filtered >= unfiltered + 10 points).

    .venv/bin/python bench/ab_filtering.py [--pages 96] [--mismatched-share 0.5] [--steps 600] [--seeds 0 1]
    .venv/bin/python bench/ab_filtering.py --write-heldout DIR   # only the held-out images
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import shutil
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import WORK  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELDOUT_SEED = 777_001  # the sample web uses 0, the bundled scorer 1009
TASKS = ("sample_colour_shapes", "sample_shapes", "sample_colours")
UNFILTERED = [
    "score.enabled=false", "caption.min_words=0", "caption.min_chars=0",
    "caption.max_words=100000", "caption.max_chars=1000000", "caption.placeholders=[]",
    "caption.navigation=[]", "caption.boilerplate_max_images=0", "image.min_side=1",
    "image.max_aspect=1000",
]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pages", type=int, default=96, help="sample web pages (generate_site)")
    p.add_argument("--mismatched-share", type=float, default=0.5,
                   help="share of scene pairs whose alt text describes another image (the sample web's "
                        "default is ~1 in 6, for tests; web alt text is far noisier: LAION's CLIP filter "
                        "kept ~10%% of Common Crawl's pairs)")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds per arm")
    p.add_argument("--per-class", type=int, default=10, help="held-out images per class")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--write-heldout", metavar="DIR", help="write the held-out images and stop")
    return p.parse_args(argv)


def write_heldout(root: str, per_class: int, seed: int = HELDOUT_SEED) -> None:
    """ImageFolder trees for the three tasks: colour_shapes/<colour>_<shape>/, shapes/<shape>/,
    colours/<colour>/ (the same images, labelled three ways)."""
    from pipeline.sample.scenes import COLOURS, COUNTS, SHAPES, SceneSpec, encode_jpeg, render_scene
    from pipeline.sample.scorer import SCORER_RESIZE
    from transforms.resize import resize_image

    rng = random.Random(seed)
    for colour in COLOURS:
        for shape in SHAPES:
            for i in range(per_class):
                background = rng.choice([c for c in COLOURS if c != colour])
                count = rng.choices(COUNTS, weights=(0.6, 0.25, 0.15))[0]
                size = (rng.randint(160, 320), rng.randint(160, 320))
                image = render_scene(SceneSpec(shape, colour, background, count), size,
                                     seed=rng.randrange(2**31))
                data = resize_image(encode_jpeg(image), SCORER_RESIZE).data
                for task, label in (("colour_shapes", f"{colour}_{shape}"), ("shapes", shape),
                                    ("colours", colour)):
                    folder = os.path.join(root, task, label)
                    os.makedirs(folder, exist_ok=True)
                    with open(os.path.join(folder, f"{colour}_{shape}_{i:02d}.jpg"), "wb") as fh:
                        fh.write(data)


def curate(site, out: str, overrides: list[str]) -> dict:
    from pipeline.build import Inputs
    from pipeline.config import CONFIG_DIR, load_config
    from pipeline.run import run_curation
    from pipeline.sample import SampleServer

    os.makedirs(out, exist_ok=True)
    with SampleServer(site) as server:
        seeds = os.path.join(out, "seeds.txt")
        with open(seeds, "w", encoding="utf-8") as fh:
            fh.write("\n".join(server.seed_urls) + "\n")
        cfg = load_config([CONFIG_DIR / "sample.yaml"],
                          ["fetch.allow_private_networks=true"] + overrides)
        return run_curation(cfg, Inputs(seeds_file=seeds), os.path.join(out, "curated"),
                            overwrite=True)


def kept_pairs(curated: str, site) -> dict[str, int]:
    """Kept samples by the sample web's manifest kind (matched, mismatched, junk_*, ...)."""
    from pipeline.sample import manifest_by_pair
    from pipeline.shard_format import read_samples_table
    from urllib.parse import urlsplit

    by_pair = manifest_by_pair(site)
    table = read_samples_table(os.path.join(curated, "shards")).to_pylist()
    kinds: dict[str, int] = {}
    for row in table:
        key = (urlsplit(row["page_url"]).path, urlsplit(row["url"]).path)
        kind = by_pair[key].kind if key in by_pair else "other"
        kinds[kind] = kinds.get(kind, 0) + 1
    return dict(sorted(kinds.items(), key=lambda kv: -kv[1]))


def train_and_eval(shards: str, out: str, seed: int, a: argparse.Namespace,
                   heldout: str) -> dict[str, float]:
    from trainer.config import TrainConfig
    from trainer.eval_tasks import load_task, run_zero_shot
    from trainer.loop import train
    from trainer.model import create_model

    model_json = os.path.join(ROOT, "configs", "models", "wit-tiny.json")
    cfg = TrainConfig(model=model_json, shards=(shards,), steps=a.steps, batch_size=a.batch_size,
                      lr=a.lr, warmup_steps=max(1, a.steps // 10), seed=seed, output=out,
                      save_every=0, log_every=max(1, a.steps // 5), tensorboard=False,
                      shuffle_buffer=1000)
    result = train(cfg)
    model, _, preprocess, tokenizer = create_model(model_json, result.checkpoint_path)
    scores = {"final_loss": result.final_loss}
    for name in TASKS:
        task = load_task(os.path.join(ROOT, "configs", "eval", f"{name}.yaml"))
        folder = os.path.join(heldout, name[len("sample_"):])
        scores[name] = run_zero_shot(model, tokenizer, preprocess, task, folder)["top1"]
    return scores


def main(argv=None) -> int:
    a = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, force=True)  # Beam logs to the root logger
    import torch

    torch.set_num_threads(a.threads)
    if a.write_heldout:
        write_heldout(a.write_heldout, a.per_class)
        return 0
    from pipeline.sample import generate_site

    start = time.monotonic()
    work = os.path.join(WORK, "ab_filtering")
    shutil.rmtree(work, ignore_errors=True)
    heldout = os.path.join(work, "heldout")
    write_heldout(heldout, a.per_class)
    site = generate_site(seed=0, n_pages=a.pages, mismatched_share=a.mismatched_share)
    arms: dict[str, dict] = {}
    for arm, overrides in (("filtered", []), ("unfiltered", UNFILTERED)):
        out = os.path.join(work, arm)
        stats = curate(site, out, overrides)
        runs = [train_and_eval(os.path.join(out, "curated", "shards"),
                               os.path.join(out, f"train_seed{s}"), s, a, heldout)
                for s in a.seeds]
        arms[arm] = {"kept": kept_pairs(os.path.join(out, "curated"), site), "runs": runs,
                     "stats": stats}
    print(report(a, site, arms, time.monotonic() - start))
    return 0


def report(a: argparse.Namespace, site, arms: dict, seconds: float) -> str:
    lines = [f"sample web: {a.pages} pages, {len(site.manifest)} <img>; tiny model, "
             f"{a.steps} steps x batch {a.batch_size}, seeds {a.seeds}; held-out: "
             f"{a.per_class} images per colour+shape class (seed {HELDOUT_SEED})"]
    for arm, data in arms.items():
        kept = data["kept"]
        lines.append(f"{arm:>10}: {sum(kept.values())} pairs kept: {kept}")
    lines.append(f"{'zero-shot top-1':>24}{'filtered':>10}{'unfiltered':>12}{'gap (pts)':>11}")
    gaps = {}
    for name in TASKS + ("final_loss",):
        values = [statistics.mean(r[name] for r in arms[arm]["runs"])
                  for arm in ("filtered", "unfiltered")]
        if name == "final_loss":
            lines.append(f"{'final train loss':>24}{values[0]:>10.3f}{values[1]:>12.3f}")
            continue
        gaps[name] = 100 * (values[0] - values[1])
        per_seed = " ".join(f"{100 * r[name]:.1f}/{100 * u[name]:.1f}" for r, u in
                            zip(arms["filtered"]["runs"], arms["unfiltered"]["runs"]))
        lines.append(f"{name:>24}{100 * values[0]:>9.1f}%{100 * values[1]:>11.1f}%"
                     f"{gaps[name]:>+11.1f}   per seed {per_seed}")
    target = gaps["sample_colour_shapes"] >= 10
    lines.append(f"held-out colour+shape gap {gaps['sample_colour_shapes']:+.1f} points: target "
                 f"(>= +10) {'met' if target else 'NOT met'}; {seconds:.0f}s in all")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
