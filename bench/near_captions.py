"""Does near-dedupe merge different images whose captions name the difference? (issue 16 item 4)

Input: the caption corpus (tests/data/caption_corpus) and its unpacked Debian packages (``--root``,
bench/build_caption_corpus.py). Output: every pair of corpus images (>= 32 px, captions the
caption rules keep, one caption per image as DedupeUrls keeps one pair per URL) that DedupeNear
would join — the pipeline's own thumbnail pHash and colour signature (transforms/imaging.py) and
``near_distance`` at the default ``dedupe.near_*`` — with whether it is the same picture and
whether ``filters.dedupe_policy.captions_tell_apart`` would veto the edge; then the counts.
Same picture (the ground truth, stated so a reader can check each printed pair): identical
file names in two manual versions, a gallery thumbnail and its figure (``_thumb`` / ``_001``),
or ``taj_orig`` and its rescaled copy; byte-identical files are left out (DedupeImages merges
them first). Exit 1 when the veto loses more true merges than wrong merges it prevents.

    .venv/bin/python bench/near_captions.py [--root /tmp/capcorp/x]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import build_caption_corpus as corpus  # noqa: E402
from bench import caption_quality as cq  # noqa: E402
from filters.dedupe_policy import captions_tell_apart  # noqa: E402
from pipeline.config import CurateConfig  # noqa: E402
from pipeline.specs import lsh_spec, resize_spec  # noqa: E402
from transforms.imaging import DecodeError, resize_image  # noqa: E402
from transforms.lsh import near_distance  # noqa: E402


def _file(root: Path, row: dict):
    if row["site"] == "added":
        return None
    pkg, sub = (corpus.TUXPAINT[:2] if row["site"] == "tuxpaint" else corpus.SITES[row["site"]][:2])
    return root / pkg / sub / row["image"]


def same_picture(a: str, b: str) -> bool:
    name = lambda p: p.rsplit("/", 1)[-1]  # noqa: E731
    stem = lambda p: re.sub(r"_(thumb|001)\.png$", "", name(p))  # noqa: E731
    thumb = ("_thumb.png" in a) != ("_thumb.png" in b)
    return name(a) == name(b) or (stem(a) == stem(b) and thumb and "sphx_glr" in a) or \
        {re.sub(r"_2\.png$", ".jpg", name(a)), re.sub(r"_2\.png$", ".jpg", name(b))} == {"taj_orig.jpg"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default="/tmp/capcorp/x")
    args = ap.parse_args(argv)
    cfg = CurateConfig()
    rows = cq.load()
    kept = cq.outcomes_new(rows, cfg)
    images: dict = {}
    for row in sorted(rows, key=lambda r: r["caption"]):
        path = _file(Path(args.root), row)
        if kept[row["id"]] is not None or path is None or not path.is_file() or (row["site"], row["image"]) in images:
            continue
        data = path.read_bytes()
        try:
            res = resize_image(data, resize_spec(cfg))
        except DecodeError:
            continue
        if min(res.original_width, res.original_height) >= cfg.image.min_side:
            images[(row["site"], row["image"])] = (int(res.phash, 16), res.colour_sig, hashlib.sha256(data).digest(),
                                                   row["caption"])
    spec, counts = lsh_spec(cfg), {"joined": 0, "different": 0, "wrong_prevented": 0, "right_lost": 0}
    for (ka, a), (kb, b) in itertools.combinations(sorted(images.items()), 2):
        if a[2] == b[2] or near_distance(a[0], a[1], b[0], b[1], spec) is None:
            continue
        same, veto = same_picture(ka[1], kb[1]), captions_tell_apart(a[3], b[3])
        counts["joined"] += 1
        counts["different"] += not same
        counts["wrong_prevented"] += veto and not same
        counts["right_lost"] += veto and same
        print(f"{'same' if same else 'DIFF'} {'veto' if veto else 'join'}  {a[3][:45]!r:48} {b[3][:45]!r}")
    print(f"\n{len(images)} images; near pairs DedupeNear joins: {counts['joined']}, of different pictures: "
          f"{counts['different']}; the caption veto prevents {counts['wrong_prevented']} of those and loses "
          f"{counts['right_lost']} true merges")
    return 0 if counts["wrong_prevented"] >= counts["right_lost"] else 1


if __name__ == "__main__":
    sys.exit(main())
