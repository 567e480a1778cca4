"""HashImages: a 64-bit DCT perceptual hash (pHash) and a colour signature of every resized image.

Input: ``ResizedImage``. Output: the same ``ResizedImage`` with ``phash`` (16 hex
digits) and ``colour_sig`` (24 hex digits) set. Nothing is dropped; an image whose
bytes do not decode (a bug upstream: these are our own re-encoded bytes) keeps
both empty and is skipped by near-duplicate dedupe, with a warning. So does an
image whose hashing raises an unexpected exception: it is logged with its
traceback and counted as ``image.internal_error`` (a Beam counter; not a
rejection, since this stage drops nothing) — one image's bug does not stop the run.

pHash: greyscale 32x32 Lanczos thumbnail (after an integer box reduction, Pillow's
``reducing_gap``), mean removed and multiplied by a sine
window, 2-D DCT-II, the 8x8 lowest frequencies, one bit per coefficient "above
the median of those 64" (imagehash's ``phash`` plus the window). The window is
what makes crops tolerable: content that a crop removes sits at the border, where
the window is near zero, so a crop of 10 % of the area moves 0-8 bits instead of
4-16 (measured in tests/transforms/test_near_dedupe_quality.py). Re-encodes,
rescales and small colour shifts move 0-4 bits.

Colour signature: the mean Y, Cb, Cr of each quarter of the image (12 bytes). A
luminance hash cannot tell "white triangles on blue" from "yellow triangles on
purple"; DedupeNear also requires the signatures within ``near_colour_delta``.

Both are computed on the image *content*: for ``resize.mode: border`` the white
padding that squares the image is cut off first, so two aspect ratios of one
picture are not pushed apart by their padding. The resize core hashes the resized
pixels before it encodes them (transforms/phash.py), so images from FetchImages need
no work here; anything else is decoded from the resized bytes already in memory.
"""

from __future__ import annotations

import io
import logging
from dataclasses import replace
from typing import Optional

import apache_beam as beam
from PIL import Image, UnidentifiedImageError

from pipeline import faults, metrics
from pipeline.records import DropReason, ResizedImage, ScoredImage
from transforms.image_store import image_bytes
from transforms.imaging import ResizeSpec, target_size
from transforms.phash import colour_signature, phash_image

log = logging.getLogger(__name__)

_DECODE_ERRORS = (OSError, SyntaxError, ValueError, UnidentifiedImageError, EOFError)


def to_hex(value: int) -> str:
    return f"{value:016x}"


def content_box(image: ResizedImage, spec: Optional[ResizeSpec]) -> Optional[tuple[int, int, int, int]]:
    """The box of ``image.data`` that holds the picture: without ``border`` padding; None = all of it."""
    if spec is None or spec.mode != "border":
        return None
    tw, th = target_size(image.original_width, image.original_height, spec)
    if (tw, th) == (image.width, image.height) or max(tw, th) > spec.image_size:
        return None
    left, top = (image.width - tw) // 2, (image.height - th) // 2
    return left, top, left + tw, top + th


def hash_resized(image: ResizedImage, spec: Optional[ResizeSpec]) -> tuple[str, str]:
    """(hex pHash, hex colour signature) of a resized image's content; ("", "") if it does not decode."""
    try:
        with Image.open(io.BytesIO(image_bytes(image))) as img:
            img.load()
            box = content_box(image, spec)
            content = img.crop(box) if box else img
            return to_hex(phash_image(content)), colour_signature(content).hex()
    except _DECODE_ERRORS as exc:
        log.warning("cannot hash %s: %s: %s", image.pair.key, type(exc).__name__, exc)
        return "", ""


def with_hashes(record, spec: Optional[ResizeSpec]):
    """A ResizedImage (or a ScoredImage's image) with ``phash`` and ``colour_sig`` set.

    Images resized by transforms/imaging.py arrive hashed already (from the pixels
    in hand before encoding); only the others are decoded here.
    """
    if isinstance(record, ScoredImage):
        return replace(record, image=with_hashes(record.image, spec))
    if record.phash and record.colour_sig:
        return record
    phash, colour = hash_isolated(record, spec)
    return replace(record, phash=phash, colour_sig=colour)


def hash_isolated(image: ResizedImage, spec: Optional[ResizeSpec]) -> tuple[str, str]:
    """``hash_resized``; an unexpected exception leaves the image unhashed, logged and counted."""
    try:
        return hash_resized(image, spec)
    except Exception as exc:  # reads this image's bytes (maybe from a spill file): one image, not the run
        faults.internal_error(DropReason.IMAGE_INTERNAL, exc, image.pair.key)
        metrics.inc_reason(DropReason.IMAGE_INTERNAL)
        return "", ""


class HashImages(beam.PTransform):
    """ResizedImage (or ScoredImage) -> the same with ``phash`` and ``colour_sig`` (nothing dropped)."""

    def __init__(self, spec: Optional[ResizeSpec] = None):
        super().__init__()
        self.spec = spec

    def expand(self, images):
        return images | "PHash" >> beam.Map(with_hashes, self.spec)
