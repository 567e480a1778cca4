"""ResizeImages: decode, orient, convert and resize each image as img2dataset does.

Input: ``FetchedImage``. Output: ``(resized, rejected)`` — ``ResizedImage`` with
the re-encoded bytes, output and original sizes and the sha256 of the downloaded
bytes; or a ``Rejection`` with ``image.undecodable`` (truncated, corrupt or
unsupported data) or ``image.too_many_pixels`` (decompression bombs, checked
from the header before the pixels are decoded), or ``image.internal_error`` (an
unexpected exception on one image: pipeline/faults.py).

Modes keep img2dataset's names and meanings (``resize.mode``):
``no``; ``keep_ratio`` (shorter side to ``image_size``); ``keep_ratio_largest``
(longer side to ``image_size``); ``center_crop`` (shorter side, then a centred
square crop); ``border`` (longer side, then white padding to a square).
``resize_only_if_bigger`` never upscales. EXIF orientation is applied, palette,
CMYK and alpha images become RGB (alpha composited on white), animated images
give their first frame. Large JPEGs are decoded at reduced size (``draft``):
the DCT scaling makes decode ~4x cheaper when the target is much smaller.
Large images that are not RGB are flattened after the downscale, a band of rows
at a time, with the same pixels (transforms/imaging.py): the peak per image is
one decode plus the output, so a big RGBA PNG costs ~1x its decoded size, not ~5x.

``resize.svg``: SVG is rendered safely at the target size (transforms/svg.py), or refused
with ``image.svg_refused``. ``ResizedImage.exif`` carries img2dataset's ``exif`` text of the
original (transforms/imaging.py).
"""

from __future__ import annotations

import hashlib

import apache_beam as beam

from pipeline import faults, metrics
from pipeline.records import DropReason, FetchedImage, Rejection, ResizedImage
from transforms.imaging import (DecodeError, ResizeResult, ResizeSpec, resize_image,  # noqa: F401
                                target_size)


def resize_fetched(fetched: FetchedImage, spec: ResizeSpec, pool=None) -> ResizedImage | Rejection:
    """``pool``: an executor whose processes run ``resize_image`` (see transforms/fetch.py)."""
    try:
        res = pool.submit(resize_image, fetched.data, spec).result() if pool else resize_image(fetched.data, spec)
    except DecodeError as err:
        return Rejection.of(fetched.pair, err.reason, err.detail)
    return ResizedImage(
        pair=fetched.pair, data=res.data, ext=spec.encode_format, width=res.width, height=res.height,
        original_width=res.original_width, original_height=res.original_height,
        sha256=hashlib.sha256(fetched.data).hexdigest(), final_url=fetched.final_url, mime=fetched.mime,
        phash=res.phash, colour_sig=res.colour_sig, exif=res.exif)


def image_internal_error(fetched: FetchedImage, exc: Exception) -> Rejection:
    """The rejection of an image whose decode/resize raised unexpectedly: ``image.internal_error``."""
    return Rejection.of(fetched.pair, DropReason.IMAGE_INTERNAL,
                        faults.internal_error(DropReason.IMAGE_INTERNAL, exc, fetched.pair.image_url))


class _ResizeFn(beam.DoFn):
    def __init__(self, spec: ResizeSpec):
        self.spec = spec

    def process(self, fetched: FetchedImage):
        try:
            out = resize_fetched(fetched, self.spec)
        except Exception as exc:  # a bug one archived image trips costs that image, not the run
            out = image_internal_error(fetched, exc)
        if isinstance(out, Rejection):
            metrics.inc_reason(DropReason(out.reason))
            yield beam.pvalue.TaggedOutput("rejected", out)
        else:
            metrics.inc(metrics.Counter.IMAGES_RESIZED)
            yield out


class ResizeImages(beam.PTransform):
    """FetchedImage -> (ResizedImage, Rejection)."""

    def __init__(self, spec: ResizeSpec):
        super().__init__()
        self.spec = spec

    def expand(self, fetched):
        out = fetched | "Resize" >> beam.ParDo(_ResizeFn(self.spec)).with_outputs("rejected", main="resized")
        return out.resized, out.rejected
