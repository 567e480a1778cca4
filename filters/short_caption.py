"""ShortCaptionRule: a caption of a few words is kept only on an image big and rich enough to be
a picture of something, never on an icon.

Input: ``ResizedImage`` (after the fetch: the rule needs the image). Output: via ``ApplyRules``
(next to the image rules in pipeline/build.py), kept images and rejections with
``caption.too_short``: a caption of fewer than ``min_words`` words on an image whose original
shorter side is under ``short_min_side`` px, or whose thumbnail costs under ``short_min_bpp``
bits per picture pixel (flat drawings, blank diagrams). Longer captions pass untouched; captions
under ``min_chars`` characters never get here (CaptionRules drops them before the download).

Why after the fetch: "A banana." under a photo of a banana, "Filterbox" under a screenshot of
one, are exact captions; "Home", "add zone" or "[Tip]" under a 24 px icon are control names.
The words alone cannot tell them apart; the image can (tests/data/caption_corpus: 6 real sites).

The photo-likeness measure is the compressed size of the thumbnail ResizeImages made, per pixel
of picture it holds (border padding left out): JPEG spends few bits on flat colour and many on
texture, so it separates flat icons and blank frames from photos, scans and screenshots without
decoding anything. It needs only the byte count, which the record carries whether the bytes are
inline or spilled to a blob file (a spilled blob cannot be read at this point: its file is still
being written by the same bundle). The threshold is for the default ``resize.encode_format: jpg``
at quality 95; another encoding needs its own (bench/caption_quality.py prints the values).
"""

from __future__ import annotations

from dataclasses import dataclass

from filters.base import Verdict
from filters.caption_rules import CaptionSpec
from pipeline.records import DropReason, ResizedImage


def content_area(width: int, height: int, original_width: int, original_height: int) -> float:
    """Pixels of a ``width`` x ``height`` thumbnail that show the picture (border padding excluded):
    the original's shape fitted inside the thumbnail."""
    if min(width, height, original_width, original_height) <= 0:
        return 0.0
    scale = min(width / original_width, height / original_height)
    return min(float(width * height), original_width * original_height * scale * scale)


def thumbnail_bpp(n_bytes: int, width: int, height: int, original_width: int, original_height: int) -> float:
    """Bits of the encoded thumbnail per picture pixel: photos cost many, flat drawings few."""
    area = content_area(width, height, original_width, original_height)
    return 8.0 * n_bytes / area if area else 0.0


def encoded_size(image: ResizedImage) -> int:
    """Bytes of the encoded thumbnail, inline or spilled (the blob reference carries the length)."""
    return image.blob.length if image.blob is not None else len(image.data)


def short_caption_verdict(caption: str, side: int, bpp: float, spec: CaptionSpec) -> Verdict:
    """``None`` to keep; ``side``: the original's shorter side, ``bpp``: ``thumbnail_bpp``."""
    words = len(caption.split())
    if words >= spec.min_words:
        return None
    if side >= spec.short_min_side and bpp >= spec.short_min_bpp:
        return None
    return DropReason.CAPTION_TOO_SHORT, (f"{words} words on an image {side} px a side, {bpp:.2f} bits/px "
                                          f"(a short caption needs >= {spec.short_min_side} px and "
                                          f">= {spec.short_min_bpp} bits/px)")


@dataclass(frozen=True)
class ShortCaptionRule:
    """``short_caption_verdict`` on a resized image, as a Rule for ApplyRules."""

    spec: CaptionSpec
    name: str = "caption_short"  # an unexpected exception here is caption.internal_error

    def check(self, image: ResizedImage) -> Verdict:
        side = min(image.original_width, image.original_height)
        bpp = thumbnail_bpp(encoded_size(image), image.width, image.height,
                            image.original_width, image.original_height)
        return short_caption_verdict(image.pair.caption, side, bpp, self.spec)


def short_caption_rules(spec: CaptionSpec) -> list:
    return [ShortCaptionRule(spec)]
