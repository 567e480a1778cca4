"""Bytes per record at each shuffle: what docs/scale.md multiplies by 100M.

Input: a finished ``wit curate`` output (default: the curated part of ``wit demo``'s output,
e.g. ``wit demo --output /tmp/demo --train-steps 1`` then ``/tmp/demo/curated``). From its
shards parquet, tar members, embeddings and rejections the script rebuilds the records the
pipeline moved for each kept sample and rejection — ``AltPair``, ``ResizedImage`` with its bytes
spilled (``BlobRef``) and inline, ``ScoredImage`` with its embeddings, ``Rejection`` — and
encodes each as a shuffle would: Beam's ``FastPrimitivesCoder`` (what a PCollection of our record
types gets; unknown types fall back to pickling) and, beside it, plain ``pickle``.

Two sets of figures:
- ``sample``: the records as they are (loopback URLs, the sample web's short captions, the tiny
  scorer's embeddings);
- ``wit-like``: the same records with WIT-like field lengths (assumptions, printed): a 60-char
  page URL, a 130-char image URL (upload.wikimedia.org thumb paths), a 100-char caption, a
  40-char page title and heading, ViT-B-32 embeddings (512-d float16, image and text).

Prints mean bytes per record and per GroupByKey element (key + value), and the mean size of the
default resize (256 px border, JPEG q95) of photo-like images (the sample web's are 128 px).
Exits 1 if a spilled WIT-like ``ResizedImage`` is not at least 10x smaller than the same record
with a 256-px image inline (the reason spilling exists: README "Memory that does not grow with
the input").

    .venv/bin/python -m bench.record_sizes [OUT/curated]
"""

from __future__ import annotations

import glob
import os
import pickle
import sys
import tarfile
from dataclasses import replace

import numpy as np
import pyarrow.parquet as pq
from apache_beam.coders import FastPrimitivesCoder

from pipeline.records import AltPair, BlobRef, Rejection, ResizedImage, ScoredImage

WIT_PAGE_URL = "https://en.wikipedia.org/wiki/" + "x" * 30  # 60 chars
WIT_IMAGE_URL = "https://upload.wikimedia.org/wikipedia/commons/thumb/a/ab/" + "y" * 30 + ".jpg/800px-" + "y" * 30 + ".jpg"
WIT_CAPTION = "c" * 100
WIT_TITLE = "t" * 40
VIT_B_32_DIM = 512


def _tar_sizes(shards_dir: str) -> dict:
    sizes = {}
    for path in glob.glob(os.path.join(shards_dir, "*.tar")):
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                key, ext = member.name.rsplit(".", 1)
                if ext in ("jpg", "webp", "png"):
                    sizes[key] = member.size
    return sizes


def _rows(pattern: str) -> list[dict]:
    return [row for path in sorted(glob.glob(pattern)) for row in pq.read_table(path).to_pylist()]


def records_from_output(out: str):
    """(scored images, rejections) rebuilt from a curated output directory."""
    sizes = _tar_sizes(os.path.join(out, "shards"))
    emb = {r["key"]: r for r in _rows(os.path.join(out, "embeddings", "*.parquet"))}
    scored = []
    for row in _rows(os.path.join(out, "shards", "*.parquet")):
        pair = AltPair(key=row["key"], page_url=row["page_url"] or "", image_url=row["url"], caption=row["caption"],
                       position=3, page_title=row["page_title"] or "", title=row["title"] or "",
                       figcaption=row["figcaption"] or "", heading=row["heading"] or "", lang=row["lang"] or "",
                       license=row["license"] or "")
        n = sizes.get(row["key"], 0)
        image = ResizedImage(pair=pair, data=b"", ext="jpg", width=row["width"], height=row["height"],
                             original_width=row["original_width"], original_height=row["original_height"],
                             sha256=row["sha256"], final_url=row["final_url"] or "", mime=row["mime"] or "",
                             phash=row["phash"] or "", colour_sig="0" * 24,
                             blob=BlobRef(os.path.abspath(os.path.join(out, "_work/images/0123456789abcdef0123456789abcdef.blob")),
                                          12_345_678, n))
        e = emb.get(row["key"], {})
        scored.append(ScoredImage(image=image, clip_score=row["clip_score"], clip_model=row["clip_model"] or "",
                                  image_embedding=np.asarray(e.get("image_embedding", []), np.float16).tobytes(),
                                  text_embedding=np.asarray(e.get("text_embedding", []), np.float16).tobytes()))
    rejections = [Rejection(**{k: (v or "") for k, v in r.items() if k in Rejection.__dataclass_fields__})
                  for r in _rows(os.path.join(out, "rejections", "*.parquet"))]
    return scored, rejections, sizes


def wit_like(s: ScoredImage) -> ScoredImage:
    pair = replace(s.image.pair, page_url=WIT_PAGE_URL, image_url=WIT_IMAGE_URL, caption=WIT_CAPTION,
                   page_title=WIT_TITLE, heading=WIT_TITLE)
    vec = np.full(VIT_B_32_DIM, 0.044, np.float16).tobytes()
    return replace(s, image=replace(s.image, pair=pair, final_url=WIT_IMAGE_URL),
                   image_embedding=vec, text_embedding=vec)


def wit_like_rejection(r: Rejection) -> Rejection:
    return replace(r, page_url=WIT_PAGE_URL, image_url=WIT_IMAGE_URL, caption=WIT_CAPTION)


def _mean(values) -> float:
    values = list(values)
    return sum(values) / max(1, len(values))


def measure(scored, rejections, image_sizes) -> dict:
    coder = FastPrimitivesCoder()
    mean_image = _mean(image_sizes) if image_sizes else 0.0
    kinds = {
        "AltPair": [s.image.pair for s in scored],
        "ResizedImage (spilled)": [s.image for s in scored],
        "ResizedImage (inline)": [replace(s.image, data=b"\0" * s.image.blob.length, blob=None) for s in scored],
        "ScoredImage (spilled)": scored,
        "Rejection": rejections,
    }
    out = {}
    for name, records in kinds.items():
        out[name] = {"n": len(records),
                     "coder": _mean(len(coder.encode((r.key if isinstance(r, Rejection) else "k" * 20, r)))
                                    for r in records),
                     "pickle": _mean(len(pickle.dumps(r, pickle.HIGHEST_PROTOCOL)) for r in records)}
    out["_image_bytes_mean"] = mean_image
    return out


def _print(title: str, figures: dict) -> None:
    print(f"\n{title}  (mean bytes per GroupByKey element: (20-char key, record))")
    print(f"  {'record':26s} {'n':>5s} {'Beam coder':>11s} {'pickle':>8s}")
    for name, f in figures.items():
        if name.startswith("_"):
            continue
        print(f"  {name:26s} {f['n']:5d} {f['coder']:11.0f} {f['pickle']:8.0f}")
    print(f"  mean resized image in the tars: {figures['_image_bytes_mean']:.0f} bytes")


def resized_photo_bytes(n: int = 40) -> float:
    """Mean bytes of the default resize (256 px border, JPEG q95) of ``n`` photo-like JPEGs
    (bench.common.photo_like, 300-1200 px sides): what a WIT-like image weighs in the shards."""
    import io

    from bench.common import photo_like
    from pipeline.config import CurateConfig
    from pipeline.specs import resize_spec
    from transforms.imaging import resize_image

    rng = np.random.default_rng(0)
    total = 0
    for _ in range(n):
        w, h = (int(v) for v in rng.integers(300, 1201, size=2))
        buf = io.BytesIO()
        photo_like(rng, w, h).save(buf, format="JPEG", quality=90)
        total += len(resize_image(buf.getvalue(), resize_spec(CurateConfig())).data)
    return total / n


def main(argv) -> int:
    out = argv[1] if len(argv) > 1 else "/tmp/wit_scale_demo/curated"
    scored, rejections, sizes = records_from_output(out)
    if not scored:
        print(f"no kept samples under {out}: run `wit demo --output DIR` first and pass DIR/curated")
        return 2
    sample = measure(scored, rejections, sizes.values())
    _print(f"sample: {out}", sample)
    wit = measure([wit_like(s) for s in scored], [wit_like_rejection(r) for r in rejections], sizes.values())
    _print(f"wit-like: page URL {len(WIT_PAGE_URL)}, image URL {len(WIT_IMAGE_URL)}, caption {len(WIT_CAPTION)}, "
           f"title/heading {len(WIT_TITLE)} chars, {VIT_B_32_DIM}-d float16 embeddings", wit)
    photo = resized_photo_bytes()
    spilled = wit["ResizedImage (spilled)"]["coder"]
    print(f"\n256-px border JPEG q95 of photo-like 300-1200 px images: {photo:.0f} bytes mean")
    ratio = (spilled - 0 + photo) / spilled
    print(f"wit-like ResizedImage inline / spilled at that image size: {ratio:.1f}x (target >= 10x)")
    return 0 if ratio >= 10 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
