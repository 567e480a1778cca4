"""Build the real-page caption corpus (tests/data/caption_corpus/pairs.jsonl) from Debian doc packages.

Input: the unpacked packages (``--root``, default /tmp/capcorp/x; fetch them with
``apt-get download gimp-help-en grass-doc python-skimage-doc kicad-doc-en debian-edu-doc-en
tuxpaint-stamps-default`` and ``dpkg -x`` each into ROOT/<package>). Output: one JSON line per
distinct (image, caption) of a site (``copies``: how many pairs of the sampled pages it stands
for): site, page path, image path, caption, and the image facts the caption rules may use
(original width/height, SVG as such, the thumbnail ResizeImages makes from the real file — its
byte count, size and bits per picture pixel, the photo-likeness measure of
filters/short_caption.py — and the colour count and grey entropy of a 64x64 view of it). Labels are not made here: they live in labels.jsonl (by pair
id), written by a person reading each caption with its facts (GUIDE.md); a rebuilt corpus keeps
them for the ids it still has.

Pairs come from our own extractor (transforms/extract_alt_text.py ``extract_pairs``) run on
every ``<img>`` of pages sampled with a fixed seed. Tux Paint ships no HTML: each stamp folder
becomes one page the script writes (``<img alt>`` = the English line of the stamp's .txt, which
describes the photo or drawing), said as such in the ``site`` row (``page_kind: "constructed"``).
No image bytes are stored: only the facts.

    .venv/bin/python bench/build_caption_corpus.py [--root /tmp/capcorp/x]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import html
import io
import json
import math
import random
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from filters.short_caption import thumbnail_bpp  # noqa: E402
from transforms.extract_alt_text import extract_pairs  # noqa: E402
from pipeline.config import CurateConfig  # noqa: E402
from pipeline.specs import extract_spec, resize_spec  # noqa: E402
from transforms.imaging import DecodeError, resize_image  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "caption_corpus"

# site -> (package, html root under the package, pages to sample, kind of site)
SITES = {
    "gimp": ("gimp-help-en", "usr/share/gimp/2.0/help/en", 160, "software manual (menus, dialogs, filter examples)"),
    "grass": ("grass-doc", "usr/share/doc/grass-doc/html", 400, "GIS manual (maps, rasters, diagrams)"),
    "skimage": ("python-skimage-doc", "usr/share/doc/python-skimage-doc/html", 120,
                "Sphinx API docs with a gallery (plots, sample photos)"),
    "kicad": ("kicad-doc-en", "usr/share/doc/kicad/help/en", 8, "EDA manual (screenshots, toolbar icons)"),
    "debian-edu": ("debian-edu-doc-en", "usr/share/doc/debian-edu-doc-en", 2,
                   "distribution manual (screenshots, admonition icons)"),
    "handbook": ("debian-handbook", "usr/share/doc/debian-handbook/html/en-US", 127,
                 "Publican book (header link images, numbered callouts, screenshots)"),
    "jsoncpp": ("libjsoncpp-doc", "usr/share/doc/libjsoncpp-doc", 40, "Doxygen API reference (footer badge)"),
}
# Cases issue 16 reports from real sites that none of the packages above has: numbered gallery
# placeholders, badges, within-caption repetition. Added by hand, marked site "added" (no image).
ADDED = ([f"photo No. {n}" for n in (1, 2, 3, 17, 118, 850)] + [f"Image {n} of 24" for n in (1, 2, 12)]
         + ["Thumbnail #4", "Picture 12", "Screenshot 3", "IMG 2041", "Figure 7"]
         + ["Powered by MediaWiki", "Creative Commons License", "Powered by WordPress", "Built with Sphinx",
            "Get it on Google Play", "Valid XHTML 1.0 Strict", "Follow us on Twitter"]
         + ["spam spam spam spam", "cheap shoes cheap shoes cheap shoes buy now",
            "best price best price best price best price"])
TUXPAINT = ("tuxpaint-stamps-default", "usr/share/tuxpaint/stamps", 140)
MAX_PAIRS = {"gimp": 130, "grass": 120, "skimage": 120, "kicad": 120, "debian-edu": 100, "handbook": 100,
             "jsoncpp": 20}
SPEC = resize_spec(CurateConfig())  # resize's defaults: 256 px, border, jpg q95 (what the pipeline makes)
SVG_SPEC = dataclasses.replace(SPEC, svg=True)
EXTRACT = extract_spec(CurateConfig())


@functools.lru_cache(maxsize=None)
def image_facts_cached(path: Path) -> tuple:
    return tuple(sorted(image_facts(path).items()))


def image_facts(path: Path) -> dict:
    """Width, height, SVG, colours/entropy of a 64x64 view, and the thumbnail ResizeImages makes:
    its byte count and size, and bits per picture pixel (filters/short_caption.py). SVG is
    rasterised as with ``resize.svg: true`` (transforms/svg.py)."""
    facts = {"file_exists": path.is_file(), "svg": path.suffix.lower() == ".svg"}
    if not facts["file_exists"]:
        return facts
    data = path.read_bytes()
    try:
        res = resize_image(data, SVG_SPEC if facts["svg"] else SPEC)
        facts.update(thumb_bytes=len(res.data), thumb_width=res.width, thumb_height=res.height,
                     thumb_bpp=round(thumbnail_bpp(len(res.data), res.width, res.height,
                                                   res.original_width, res.original_height), 3))
        facts["width"], facts["height"] = res.original_width, res.original_height
        with Image.open(io.BytesIO(res.data)) as thumb:  # the colour facts from what the pipeline sees
            small = thumb.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR)
        facts["colours_64"] = len(np.unique(np.asarray(small).reshape(-1, 3), axis=0))
        hist = small.convert("L").histogram()
        n = sum(hist)
        facts["grey_entropy"] = round(-sum(c / n * math.log2(c / n) for c in hist if c), 3)
    except (OSError, ValueError, DecodeError) as exc:
        facts["undecodable"] = f"{type(exc).__name__}: {exc}"[:80]
    return facts


def local_file(site_root: Path, page: Path, url: str, base: str) -> Path:
    rel = unquote(urlsplit(url).path)[len(urlsplit(base).path):]
    return (site_root / rel).resolve()


def site_pairs(root: Path, site: str, seed: int) -> list[dict]:
    package, sub, n_pages, _ = SITES[site]
    site_root = (root / package / sub).resolve()
    pages = sorted(p for p in site_root.rglob("*.htm*") if p.is_file())
    rng = random.Random(f"{seed}:{site}")
    chosen = sorted(rng.sample(pages, min(n_pages, len(pages))))
    base = f"http://{site}.test/"
    rows = []
    for page in chosen:
        rel = page.relative_to(site_root).as_posix()
        pairs, _rejected = extract_pairs(page.read_bytes(), base + rel, "text/html", EXTRACT)
        for pair in pairs:
            img = local_file(site_root, page, pair.image_url, base)
            rows.append({"site": site, "page": rel, "image": unquote(urlsplit(pair.image_url).path).lstrip("/"),
                         "caption": pair.caption, "declared_width": pair.declared_width,
                         "declared_height": pair.declared_height, **dict(image_facts_cached(img))})
    rows = _distinct(rows)  # DedupeUrlCaptions' view: one pair per (image, caption), copies counted
    rng.shuffle(rows)
    rows = rows[:MAX_PAIRS[site]]
    return sorted(rows, key=lambda r: (r["page"], r["image"], r["caption"]))


def _distinct(rows: list[dict]) -> list[dict]:
    """One row per (image, caption); ``copies``: how many pairs of the sampled pages it stands for."""
    out: dict = {}
    for row in rows:
        key = (row["image"], row["caption"])
        if key in out:
            out[key]["copies"] += 1
        else:
            out[key] = {**row, "copies": 1}
    return list(out.values())


def tuxpaint_pairs(root: Path, seed: int) -> list[dict]:
    """One constructed page per stamp folder: <img alt=the stamp's English description>."""
    package, sub, n = TUXPAINT
    stamps_root = root / package / sub
    stamps = sorted(p for p in stamps_root.rglob("*.txt"))
    rows = []
    for txt in sorted(random.Random(f"{seed}:tuxpaint").sample(stamps, n)):
        image = next((txt.with_suffix(ext) for ext in (".png", ".svg", ".jpg") if txt.with_suffix(ext).is_file()), None)
        if image is None:
            continue
        caption = txt.read_text(encoding="utf-8", errors="replace").splitlines()[0].strip()
        folder = txt.parent.relative_to(stamps_root).as_posix()
        page_html = (f'<html><body><img src="{html.escape(image.name)}" alt="{html.escape(caption)}">'
                     f"</body></html>").encode("utf-8")
        pairs, _ = extract_pairs(page_html, f"http://tuxpaint.test/{folder}/index.html", "text/html", EXTRACT)
        for pair in pairs:
            rows.append({"site": "tuxpaint", "page": f"{folder}/index.html (constructed)",
                         "image": f"{folder}/{image.name}", "caption": pair.caption,
                         "declared_width": None, "declared_height": None, **dict(image_facts_cached(image))})
    return _distinct(rows)


def pair_id(row: dict, seen: dict) -> str:
    """site-<8 hex of page, image, caption>: stable across rebuilds, so labels stay attached."""
    digest = hashlib.sha1("\0".join((row["page"], row["image"], row["caption"])).encode("utf-8")).hexdigest()[:8]
    base = f"{row['site']}-{digest}"
    seen[base] = seen.get(base, 0) + 1
    return base if seen[base] == 1 else f"{base}-{seen[base]}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default="/tmp/capcorp/x")
    ap.add_argument("--seed", type=int, default=16)
    args = ap.parse_args(argv)
    root = Path(args.root)
    rows = []
    for site in SITES:
        rows += site_pairs(root, site, args.seed)
    rows += tuxpaint_pairs(root, args.seed)
    rows += [{"site": "added", "page": "(issue 16)", "image": f"added/{i}", "caption": c, "copies": 1,
              "declared_width": None, "declared_height": None, "file_exists": False, "svg": False}
             for i, c in enumerate(ADDED)]
    OUT.mkdir(parents=True, exist_ok=True)
    seen: dict = {}
    with open(OUT / "pairs.jsonl", "w", encoding="utf-8") as fh:
        for row in rows:
            ident = pair_id(row, seen)
            fh.write(json.dumps({"id": ident, **row}, ensure_ascii=False, sort_keys=True) + "\n")
    sites = {s: {"package": v[0], "kind": v[3], "pages_sampled": v[2], "page_kind": "real"} for s, v in SITES.items()}
    sites["added"] = {"package": "", "kind": "cases issue 16 reports from real sites; added by hand, no image",
                      "pages_sampled": 0, "page_kind": "added"}
    sites["tuxpaint"] = {"package": TUXPAINT[0], "kind": "photo and clip-art stamps with one-sentence descriptions",
                         "pages_sampled": TUXPAINT[2], "page_kind": "constructed"}
    (OUT / "sites.json").write_text(json.dumps(sites, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    counts = {}
    for r in rows:
        counts[r["site"]] = counts.get(r["site"], 0) + 1
    print(f"{len(rows)} pairs: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
