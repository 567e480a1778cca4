"""Caption quality on real pages: precision and recall of "kept" against "descriptive".

Input: tests/data/caption_corpus/pairs.jsonl (real ``<img>`` pairs of 8 sites, made by
bench/build_caption_corpus.py with our extractor) and labels.jsonl (a person's label per pair,
GUIDE.md). Output: a table per site and overall, for the rules before issue 16
(bench/caption_rules_before.py) and for today's rule path with the default config: CaptionRules
(filters/caption_rules.py), DropBoilerplate's key and count (filters/boilerplate.py) over the
pairs CaptionRules kept, then the post-fetch short-caption rule (filters/short_caption.py) on the
image facts the corpus records. Exit status 1 when the new rules miss the goal overall:
precision >= 0.95 and recall >= 0.90.

Image facts: SVG is judged as rasterised (resize.svg: true; with the default false an SVG is never
downloaded, whatever its caption); an image the corpus has no pixels for (a missing file, the
hand-added cases) counts as 0 px, so a caption the short-caption rule judges is dropped.
The image rules (image.too_small / image.bad_aspect) are not part of the caption path; a second
table shows what they add. ``--show drops|keeps`` lists the pairs the new rules get wrong.

    .venv/bin/python bench/caption_quality.py [--show drops]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import caption_rules_before as before  # noqa: E402
from filters.base import first_failure  # noqa: E402
from filters.boilerplate import boilerplate_key, distinct_images  # noqa: E402
from filters.caption_rules import caption_rules  # noqa: E402
from filters.image_rules import image_verdict  # noqa: E402
from filters.short_caption import short_caption_rules  # noqa: E402
from pipeline.config import CurateConfig  # noqa: E402
from pipeline.records import AltPair, BlobRef, ResizedImage  # noqa: E402
from pipeline.specs import caption_spec, image_spec  # noqa: E402

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "caption_corpus"
GOAL_PRECISION, GOAL_RECALL = 0.95, 0.90


def load(corpus: Path = CORPUS) -> list[dict]:
    """Corpus rows with their ``label`` and ``kind`` joined in (every pair must be labelled)."""
    labels = {r["id"]: r for r in map(json.loads, (corpus / "labels.jsonl").read_text("utf-8").splitlines())}
    rows = [json.loads(line) for line in (corpus / "pairs.jsonl").read_text("utf-8").splitlines()]
    missing = [r["id"] for r in rows if r["id"] not in labels]
    if missing:
        raise SystemExit(f"{len(missing)} pairs have no label, e.g. {missing[:3]}")
    return [{**r, "label": labels[r["id"]]["label"], "kind": labels[r["id"]]["kind"]} for r in rows]


def as_pair(row: dict) -> AltPair:
    base = f"http://{row['site']}.test/"
    return AltPair(key=row["id"], page_url=base + row["page"], image_url=base + row["image"], caption=row["caption"])


def _boilerplate(rows: list[dict], pairs: dict, key_of, max_images: int) -> set:
    """Ids whose (site, caption) key names more than ``max_images`` distinct images (DropBoilerplate)."""
    groups = defaultdict(list)
    for row in rows:
        key = key_of(pairs[row["id"]])
        if key is not None:
            groups[key].append(pairs[row["id"]])
    return {p.key for members in groups.values() if distinct_images(members) > max_images for p in members}


def _image(row: dict) -> tuple[int, float]:
    """(original shorter side, thumbnail bits per pixel); 0, 0.0 without pixels."""
    if not row.get("thumb_bytes"):
        return 0, 0.0
    return min(row["width"], row["height"]), float(row["thumb_bpp"])


def as_resized(row: dict, pair: AltPair) -> ResizedImage:
    """The ResizedImage the pipeline would hand ShortCaptionRule: the thumbnail's size and byte count
    (as a blob reference: the rule reads only its length), the original's size."""
    if not row.get("thumb_bytes"):
        return ResizedImage(pair=pair, data=b"", ext="jpg", width=0, height=0, original_width=0,
                            original_height=0, sha256="")
    return ResizedImage(pair=pair, data=b"", ext="jpg", width=row["thumb_width"], height=row["thumb_height"],
                        original_width=row["width"], original_height=row["height"], sha256="",
                        blob=BlobRef("", 0, row["thumb_bytes"]))


def outcomes_new(rows: list[dict], cfg: CurateConfig) -> dict:
    """{id: None (kept) or reason value}: CaptionRules -> DropBoilerplate -> ShortCaptionRule."""
    spec, rules = caption_spec(cfg), caption_rules(caption_spec(cfg))
    pairs = {r["id"]: as_pair(r) for r in rows}
    out = {}
    for row in rows:
        verdict = first_failure(rules, pairs[row["id"]])
        out[row["id"]] = verdict[0].value if verdict else None
    passed = [r for r in rows if out[r["id"]] is None]
    if cfg.caption.boilerplate_max_images:
        for ident in _boilerplate(passed, pairs, boilerplate_key, cfg.caption.boilerplate_max_images):
            out[ident] = "caption.boilerplate"
    short = short_caption_rules(spec)
    for row in rows:
        if out[row["id"]] is None:
            verdict = first_failure(short, as_resized(row, pairs[row["id"]]))
            out[row["id"]] = verdict[0].value if verdict else None
    return out


def outcomes_before(rows: list[dict], max_images: int = 10) -> dict:
    pairs = {r["id"]: as_pair(r) for r in rows}
    out = {}
    for row in rows:
        verdict = before.verdict(row["caption"])
        out[row["id"]] = verdict[0].value if verdict else None
    passed = [r for r in rows if out[r["id"]] is None]
    for ident in _boilerplate(passed, pairs, before.boilerplate_key, max_images):
        out[ident] = "caption.boilerplate"
    return out


def with_image_rules(rows: list[dict], out: dict, cfg: CurateConfig) -> dict:
    """The outcome once image.too_small / image.bad_aspect run too (no pixels: dropped)."""
    spec, res = image_spec(cfg), dict(out)
    for row in rows:
        if res[row["id"]] is None:
            if not row.get("thumb_bytes"):
                res[row["id"]] = "image.none"
            else:
                verdict = image_verdict(row["width"], row["height"], spec)
                res[row["id"]] = verdict[0].value if verdict else None
    return res


def scores(rows: list[dict], out: dict) -> tuple[float, float, int, int]:
    """(precision, recall, kept, descriptive) of kept against descriptive."""
    kept = [r for r in rows if out[r["id"]] is None]
    good = sum(r["label"] == "descriptive" for r in kept)
    relevant = sum(r["label"] == "descriptive" for r in rows)
    return (good / len(kept) if kept else 1.0), (good / relevant if relevant else 1.0), len(kept), relevant


def table(rows: list[dict], results: dict) -> list[str]:
    sites = sorted({r["site"] for r in rows}, key=lambda s: (s == "added", s))
    head = f"{'site':<11} {'pairs':>5} {'descr':>5} " + " ".join(f"{name:>22}" for name in results)
    lines = [head, " " * 23 + " ".join(f"{'P':>7} {'R':>6} {'kept':>7}" for _ in results)]
    groups = [(s, [r for r in rows if r["site"] == s]) for s in sites]
    groups += [("real sites", [r for r in rows if r["site"] != "added"]), ("OVERALL", rows)]
    for name, members in groups:
        cells = []
        for out in results.values():
            p, rc, kept, relevant = scores(members, out)
            cells.append(f"{p:7.3f} {rc:6.3f} {kept:7d}")
        relevant = sum(r["label"] == "descriptive" for r in members)
        lines.append(f"{name:<11} {len(members):5d} {relevant:5d} " + " ".join(cells))
    return lines


def calibration(rows: list[dict], cfg: CurateConfig) -> list[str]:
    """What the short-caption thresholds see: short captions that reach the rule, by label."""
    spec, rules = caption_spec(cfg), caption_rules(caption_spec(cfg))
    short = [r for r in rows if len(r["caption"].split()) < spec.min_words
             and first_failure(rules, as_pair(r)) is None]
    lines = [f"short captions reaching the post-fetch rule: {len(short)}"]
    for label in ("descriptive", "junk"):
        members = [r for r in short if r["label"] == label]
        sides = sorted(_image(r)[0] for r in members)
        bpps = sorted(round(_image(r)[1], 2) for r in members)
        lines.append(f"  {label:<11} n={len(members):3d}  side px {sides[:6]} .. {sides[-3:]}  "
                     f"bpp {bpps[:6]} .. {bpps[-3:]}" if members else f"  {label}: none")
    longest = max((len(r["caption"].split()) for r in rows if r["label"] == "descriptive"), default=0)
    lines.append(f"longest descriptive caption: {longest} words (caption.max_words = {spec.max_words})")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--show", choices=("drops", "keeps"), help="list descriptive pairs dropped / junk kept")
    args = ap.parse_args(argv)
    cfg = CurateConfig()
    rows = load()
    old, new = outcomes_before(rows), outcomes_new(rows, cfg)
    print(f"{len(rows)} labelled pairs from {len({r['site'] for r in rows})} sites "
          f"({Counter(r['label'] for r in rows)})\n")
    print("caption path (the goal is measured here):")
    print("\n".join(table(rows, {"before issue 16": old, "now": new})))
    print("\nplus the image rules (image.too_small, image.bad_aspect; no pixels = dropped):")
    print("\n".join(table(rows, {"before + image": with_image_rules(rows, old, cfg),
                                 "now + image": with_image_rules(rows, new, cfg)})))
    print("\nnew drop reasons:", dict(Counter(v for v in new.values() if v)))
    print("\n".join(calibration(rows, cfg)))
    if args.show:
        want = ("descriptive", False) if args.show == "drops" else ("junk", True)
        for r in rows:
            if r["label"] == want[0] and (new[r["id"]] is None) == want[1]:
                print(f"  {r['id']:<22} {new[r['id']] or 'kept':<22} {_image(r)} {r['kind']:<12} {r['caption'][:90]!r}")
    p, rc, _, _ = scores(rows, new)
    ok = p >= GOAL_PRECISION and rc >= GOAL_RECALL
    print(f"\nnow, overall: precision {p:.3f} (goal >= {GOAL_PRECISION}), recall {rc:.3f} (goal >= {GOAL_RECALL})"
          f" -> {'goal met' if ok else 'GOAL MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
