"""What curation buys: the same tiny CLIP trained on the sample web filtered vs unfiltered.

A thin call of `wit ab` (pipeline/ab.py): curates the sample web with configs/sample.yaml (caption
and image rules, bundled CLIP scorer with its threshold, dedupe) and with
configs/sample_unfiltered.yaml (the same fetch, resize and dedupe; no scoring; caption and image
rules opened as far as the config allows), trains configs/models/wit-tiny.json on each with the
same steps, batch and seeds, and evaluates zero-shot on held-out scenes rendered from a seed the
sample web does not use (pipeline/sample/heldout.py: 40 classes "a {colour} {shape}", plus shape
and colour tasks) — and, with --tuxpaint DIR (bench/tuxpaint_pairs.py writes it), image<->sentence
retrieval on Tux Paint's stamps, real pictures we did not generate.
Prints `wit ab`'s table (mean ± sd per task, gap, whether the seeds separate the arms). Exit 1 when
the held-out colour+shape gap is under +10 points or the seeds do not separate the arms there.

    .venv/bin/python -m bench.ab_filtering [--pages 96] [--mismatched-share 0.5] [--steps 600] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import WORK  # noqa: E402

TARGET_POINTS = 10.0


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
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds per arm")
    p.add_argument("--tuxpaint", metavar="DIR", help="also evaluate retrieval on this pairs folder")
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, force=True)  # Beam logs to the root logger
    from pipeline.ab import ABSpec, EvalTask, run_ab
    from pipeline.config import CONFIG_DIR

    work = os.path.join(WORK, "ab_filtering")
    shutil.rmtree(work, ignore_errors=True)
    tasks = [EvalTask("tuxpaint_stamps", pairs=a.tuxpaint)] if a.tuxpaint else []
    result = run_ab(ABSpec(config_a=str(CONFIG_DIR / "sample.yaml"),
                           config_b=str(CONFIG_DIR / "sample_unfiltered.yaml"), output=work,
                           seeds=tuple(a.seeds), steps=a.steps, batch_size=a.batch_size, lr=a.lr,
                           tasks=tuple(tasks), sample_pages=a.pages, sample_mismatched=a.mismatched_share))
    print(result["table"])
    row = next(r for r in result["rows"] if r["task"] == "sample_colour_shapes")
    met = 100 * row["gap"] >= TARGET_POINTS and row["separated"]
    print(f"held-out colour+shape gap {100 * row['gap']:+.1f} points (target >= +{TARGET_POINTS:.0f}, "
          f"seeds separating the arms): {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
