"""HashImages: a 64-bit DCT perceptual hash (pHash) of every resized image.

Input: ``ResizedImage``. Output: the same ``ResizedImage`` with ``phash`` set
(16 hex digits). Nothing is dropped; an image whose bytes do not decode (a bug
upstream: these are our own re-encoded bytes) keeps ``phash == ""`` and is
skipped by near-duplicate dedupe, with a warning.

The hash is imagehash's ``phash`` (same bits, same hex): greyscale, 32x32
Lanczos thumbnail, 2-D DCT-II, the 8x8 lowest frequencies, each bit "above the
median of those 64". It is computed on the image *content*: for
``resize.mode: border`` the white padding that squares the image is cut off
first, so the same picture at two aspect ratios (a crop) is not pushed apart by
its padding. The decode reuses the resized bytes already in memory (about
0.3 ms for a 256 px JPEG): no second download, no second full-size decode.

Measured limits (tests/transforms/test_near_dedupe_quality.py): re-encodes,
rescales and small colour shifts move 0-4 of the 64 bits; a crop moves about
two bits per percent of the side cropped, so crops beyond ~5 % of a side are
out of reach of any Hamming threshold that keeps distinct images apart.
"""

from __future__ import annotations

import functools
import io
import logging
from dataclasses import replace
from typing import Optional

import apache_beam as beam
import numpy as np
from PIL import Image, UnidentifiedImageError

from pipeline.records import ResizedImage
from transforms.resize import ResizeSpec, target_size

log = logging.getLogger(__name__)

HASH_SIDE = 8  # 8x8 DCT coefficients -> 64 bits
DCT_SIDE = 32  # thumbnail side (imagehash's highfreq_factor 4)
HASH_BITS = HASH_SIDE * HASH_SIDE
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, UnidentifiedImageError, EOFError)


@functools.lru_cache(maxsize=4)
def _dct_matrix(n: int) -> np.ndarray:
    """DCT-II basis (unnormalised: scale does not change which side of the median a coefficient is)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    return np.cos(np.pi * (2 * i + 1) * k / (2 * n))


def phash_image(img: Image.Image) -> int:
    """The 64-bit pHash of a PIL image, as an int (bit 63 = coefficient (0, 0))."""
    grey = img.convert("L").resize((DCT_SIDE, DCT_SIDE), Image.Resampling.LANCZOS)
    pixels = np.asarray(grey, dtype=np.float64)
    basis = _dct_matrix(DCT_SIDE)
    low = (basis @ pixels @ basis.T)[:HASH_SIDE, :HASH_SIDE].ravel()
    bits = low > np.median(low)
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def to_hex(value: int) -> str:
    return f"{value:016x}"


def from_hex(text: str) -> int:
    return int(text, 16)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def content_box(image: ResizedImage, spec: Optional[ResizeSpec]) -> Optional[tuple[int, int, int, int]]:
    """The box of ``image.data`` that holds the picture: without ``border`` padding; None = all of it."""
    if spec is None or spec.mode != "border":
        return None
    tw, th = target_size(image.original_width, image.original_height, spec)
    if (tw, th) == (image.width, image.height) or max(tw, th) > spec.image_size:
        return None
    left, top = (image.width - tw) // 2, (image.height - th) // 2
    return left, top, left + tw, top + th


def phash_resized(image: ResizedImage, spec: Optional[ResizeSpec]) -> str:
    """Hex pHash of a resized image's content; "" when its bytes do not decode."""
    try:
        with Image.open(io.BytesIO(image.data)) as img:
            img.load()
            box = content_box(image, spec)
            return to_hex(phash_image(img.crop(box) if box else img))
    except _DECODE_ERRORS as exc:
        log.warning("cannot hash %s: %s: %s", image.pair.key, type(exc).__name__, exc)
        return ""


class HashImages(beam.PTransform):
    """ResizedImage -> ResizedImage with ``phash`` (nothing dropped)."""

    def __init__(self, spec: Optional[ResizeSpec] = None):
        super().__init__()
        self.spec = spec

    def expand(self, images):
        return images | "PHash" >> beam.Map(lambda im, spec: replace(im, phash=phash_resized(im, spec)), self.spec)
