"""ShortCaptionRule: a caption of a few words is kept only on an image big and rich enough to be
a picture of something, never on an icon.

Input: ``ResizedImage`` (after the fetch: the rule needs the image). Output: via ``ApplyRules``
(next to the image rules in pipeline/build.py), kept images and rejections with
``caption.too_short``: a caption of fewer than ``min_words`` words, or one that only says the
image's file name as words ("add line 24" for add_line_24.png), on an image whose original
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

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from filters.base import Verdict
from filters.caption_rules import CaptionSpec
from pipeline.records import DropReason, ResizedImage

_TOKEN = re.compile(r"[^\W_]+")


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


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def filename_echo(caption: str, image_url: str) -> bool:
    """The caption is the image's file name said as words: its words are a run of the file name's
    ("add line 24" for add_line_24.png, "plot ncut" for sphx_glr_plot_ncut_001.png)."""
    words = _tokens(caption)
    stem = _tokens(unquote(urlsplit(image_url).path.rsplit("/", 1)[-1]).rsplit(".", 1)[0])
    n = len(words)
    return 0 < n <= len(stem) and any(stem[i:i + n] == words for i in range(len(stem) - n + 1))


def short_caption_verdict(caption: str, image_url: str, side: int, bpp: float, spec: CaptionSpec) -> Verdict:
    """``None`` to keep; ``side``: the original's shorter side, ``bpp``: ``thumbnail_bpp``. Judged:
    captions of fewer than ``min_words`` words, and captions that only echo the file name."""
    words = len(caption.split())
    echo = words >= spec.min_words and filename_echo(caption, image_url)
    if words >= spec.min_words and not echo:
        return None
    if side >= spec.short_min_side and bpp >= spec.short_min_bpp:
        return None
    what = "the file name's words" if echo else f"{words} words"
    return DropReason.CAPTION_TOO_SHORT, (f"{what} on an image {side} px a side, {bpp:.2f} bits/px "
                                          f"(needs >= {spec.short_min_side} px and >= {spec.short_min_bpp} bits/px)")


@dataclass(frozen=True)
class ShortCaptionRule:
    """``short_caption_verdict`` on a resized image, as a Rule for ApplyRules."""

    spec: CaptionSpec
    name: str = "caption_short"  # an unexpected exception here is caption.internal_error

    def check(self, image: ResizedImage) -> Verdict:
        side = min(image.original_width, image.original_height)
        bpp = thumbnail_bpp(encoded_size(image), image.width, image.height,
                            image.original_width, image.original_height)
        return short_caption_verdict(image.pair.caption, image.pair.image_url, side, bpp, self.spec)


def short_caption_rules(spec: CaptionSpec) -> list:
    return [ShortCaptionRule(spec)]
