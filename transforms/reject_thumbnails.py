"""AttachThumbnails: a small JPEG of every pair dropped after its image was downloaded.

Input: the rejections of the stages that run on downloaded images (``POST_DOWNLOAD_STAGES``:
image rules, the hash blocklist, exact / near / semantic dedupe, the safety filter, the CLIP
threshold) and every downloaded image (``ResizedImage``, or ``ScoredImage`` around one; the
bytes inline or spilled to OUT/_work/images, read with ``image_store.image_bytes``).
Output: the same rejections, each with ``thumbnail`` set to a JPEG whose longest side is
``output.reject_thumbnail_size`` (96 px): WriteRejections stores it in the rejections parquet
and ``wit inspect --html`` shows it under the drop reason. Nothing is dropped: a rejection
whose image cannot be read or decoded goes on without a thumbnail (logged), since a thumbnail
is a view of the drop, never part of the accounting. Rejections of the other stages (the
image was never downloaded, or did not decode) pass by unchanged: ``thumbnail_sources``.

Why a join: a stage's ``Rejection.of(pair, ...)`` keeps only the pair, so the rejection is
matched to the downloaded image by key (and image URL: a key seen twice, say a page both
crawled and in a WARC, must not lend one pair's image to the other).

Keys at 100M pairs: ``JoinImages`` is a ``CoGroupByKey`` on the pair key (sha1 of the page URL
and the ``<img>``'s position, pipeline/records.py ``make_key``): one downloaded image and at
most one rejection per key, so the largest group is ~1 KB (a ~150-byte image reference with
spilled bytes, a ~30 KB JPEG inline with ``output.spill_images: false``, and a ~0.5 KB
rejection), whatever the run's size; all 100M downloaded images cross the shuffle as those
references, not as the records. Thumbnails are then made only for the rejected ones.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, replace
from typing import NamedTuple, Optional

import apache_beam as beam
from PIL import Image

from pipeline.records import BlobRef, Rejection, ScoredImage
from transforms.image_store import MissingImage, image_bytes

log = logging.getLogger(__name__)

# Stage labels (pipeline/build.py STAGES) whose input is a downloaded, resized image. FetchImages
# and ResizeImages are not here: their rejects have no decodable image. Labels, not reasons:
# blocklist.* reasons come both before the download (ApplyBlocklists) and after (BlockImageHashes).
POST_DOWNLOAD_STAGES = frozenset(["ImageRules", "BlockImageHashes", "DedupeImages", "DedupeNear",
                                  "SafetyFilter", "ClipThreshold", "SemanticDedupe"])
JPEG_QUALITY = 80  # ~2-3 KB at 96 px


@dataclass(frozen=True)
class ThumbnailSpec:
    """From ``output.reject_thumbnail_size`` (pipeline/specs.py ``thumbnail_spec``)."""

    size: int  # longest side, pixels
    quality: int  # JPEG quality (JPEG_QUALITY)

    def __post_init__(self):
        if not 8 <= self.size <= 1024:
            raise ValueError(f"output.reject_thumbnail_size must be 8..1024 pixels, got {self.size}")


def make_thumbnail(data: bytes, spec: ThumbnailSpec) -> Optional[bytes]:
    """A JPEG of ``data`` (any format Pillow reads) fitting ``spec.size`` square; None if it does not decode."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.draft("RGB", (spec.size, spec.size))  # JPEG: decode at a reduced DCT scale
            img.thumbnail((spec.size, spec.size))
            if img.mode != "RGB":  # resized images are RGB already; others: alpha on white
                rgba = img.convert("RGBA")
                img = Image.new("RGB", rgba.size, "white")
                img.paste(rgba, mask=rgba.getchannel("A"))
            out = io.BytesIO()
            img.save(out, "JPEG", quality=spec.quality, optimize=True)
            return out.getvalue()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        log.warning("no thumbnail: the image does not decode (%s: %s)", type(exc).__name__, exc)
        return None


class _ImageRef(NamedTuple):
    """What the join carries of a downloaded image: where its bytes are (``image_bytes`` reads it)."""

    image_url: str
    blob: Optional[BlobRef]
    data: bytes


def image_ref(record) -> tuple[str, _ImageRef]:
    image = record.image if isinstance(record, ScoredImage) else record
    return image.pair.key, _ImageRef(image.pair.image_url, image.blob, image.data if image.blob is None else b"")


def _ref_order(ref: _ImageRef) -> tuple:
    blob = ref.blob
    return ref.image_url, (blob.path, blob.offset) if blob else ("", 0), ref.data


def with_thumbnail(rejection: Rejection, refs, spec: ThumbnailSpec) -> Rejection:
    """``rejection`` with the thumbnail of its own image among ``refs`` (same image URL), if any."""
    ref = next((r for r in refs if r.image_url == rejection.image_url), None)
    if ref is None:
        return rejection
    try:
        thumb = make_thumbnail(image_bytes(ref), spec)
    except MissingImage as exc:
        log.warning("no thumbnail for %s: %s", rejection.key, exc)
        return rejection
    return replace(rejection, thumbnail=thumb) if thumb else rejection


class _ThumbnailFn(beam.DoFn):
    def __init__(self, spec: ThumbnailSpec):
        self.spec = spec

    def process(self, joined):
        _key, groups = joined
        refs = sorted(groups["images"], key=_ref_order)  # deterministic when a key came twice
        for rejection in groups["rejected"]:
            try:
                yield with_thumbnail(rejection, refs, self.spec)
            except Exception:  # noqa: BLE001 - a thumbnail is cosmetic: a bug here must not lose the rejection
                log.exception("thumbnail failed for %s; the rejection is written without one", rejection.key)
                yield rejection


class AttachThumbnails(beam.PTransform):
    """(post-download rejections, downloaded images) -> the rejections, with ``thumbnail`` set."""

    def __init__(self, spec: ThumbnailSpec):
        super().__init__()
        self.spec = spec

    def expand(self, pcolls):
        rejections, images = pcolls
        return (
            {"rejected": rejections | "KeyRejections" >> beam.Map(lambda r: (r.key, r)),
             "images": images | "ImageRefs" >> beam.Map(image_ref)}
            | "JoinImages" >> beam.CoGroupByKey()
            | "MakeThumbnails" >> beam.ParDo(_ThumbnailFn(self.spec))
        )


def thumbnail_sources(rejected: dict, images, spec: Optional[ThumbnailSpec]) -> list:
    """The rejection PCollections for WriteRejections: ``rejected`` ({stage label: PCollection})
    with the post-download stages' rejections passed through AttachThumbnails (when ``spec`` and
    ``images`` are given)."""
    if spec is None or images is None:
        return list(rejected.values())
    after = [pc for stage, pc in rejected.items() if stage in POST_DOWNLOAD_STAGES]
    before = [pc for stage, pc in rejected.items() if stage not in POST_DOWNLOAD_STAGES]
    if not after:
        return before
    dropped = tuple(after) | "PostDownloadRejections" >> beam.Flatten()
    return before + [(dropped, images) | "RejectThumbnails" >> AttachThumbnails(spec)]
