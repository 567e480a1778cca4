"""ResizeImages: decode, orient, convert and resize each image as img2dataset does.

Input: ``FetchedImage``. Output: ``(resized, rejected)`` — ``ResizedImage`` with
the re-encoded bytes, output and original sizes and the sha256 of the downloaded
bytes; or a ``Rejection`` with ``image.undecodable`` (truncated, corrupt or
unsupported data) or ``image.too_many_pixels`` (decompression bombs, checked
from the header before the pixels are decoded).

Modes keep img2dataset's names and meanings (``resize.mode``):
``no``; ``keep_ratio`` (shorter side to ``image_size``); ``keep_ratio_largest``
(longer side to ``image_size``); ``center_crop`` (shorter side, then a centred
square crop); ``border`` (longer side, then white padding to a square).
``resize_only_if_bigger`` never upscales. EXIF orientation is applied, palette,
CMYK and alpha images become RGB (alpha composited on white), animated images
give their first frame. Large JPEGs are decoded at reduced size (``draft``):
the DCT scaling makes decode ~4x cheaper when the target is much smaller.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

import apache_beam as beam
from PIL import Image, ImageOps, UnidentifiedImageError

from pipeline import metrics
from pipeline.records import DropReason, FetchedImage, Rejection, ResizedImage

_PIL_FORMATS = {"jpg": "JPEG", "webp": "WEBP", "png": "PNG"}
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, UnidentifiedImageError, Image.DecompressionBombError,
                  EOFError)


@dataclass(frozen=True)
class ResizeSpec:
    image_size: int = 256
    mode: str = "border"
    resize_only_if_bigger: bool = False
    encode_format: str = "jpg"
    encode_quality: int = 95
    max_pixels: int = 89_478_485


@dataclass(frozen=True)
class ResizeResult:
    data: bytes
    width: int
    height: int
    original_width: int
    original_height: int


class DecodeError(Exception):
    def __init__(self, reason: DropReason, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def target_size(width: int, height: int, spec: ResizeSpec) -> tuple[int, int]:
    """Size before cropping/padding: the scaled image for the mode (may equal input)."""
    size = spec.image_size
    if spec.mode == "no":
        return width, height
    if spec.mode in ("keep_ratio", "center_crop"):
        ref = min(width, height)
    else:  # keep_ratio_largest, border
        ref = max(width, height)
    if spec.resize_only_if_bigger and ref <= size:
        return width, height
    scale = size / ref
    return max(1, round(width * scale)), max(1, round(height * scale))


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _open(data: bytes, spec: ResizeSpec) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    if img.width * img.height > spec.max_pixels:
        raise DecodeError(DropReason.IMAGE_TOO_MANY_PIXELS,
                          f"{img.width}x{img.height} > {spec.max_pixels} pixels")
    if getattr(img, "is_animated", False):
        img.seek(0)
    return img


def _place(img: Image.Image, spec: ResizeSpec) -> Image.Image:
    """Crop (center_crop) or pad (border) a scaled image to the final square."""
    size = spec.image_size
    if spec.mode == "center_crop" and (img.width > size or img.height > size):
        left, top = (img.width - size) // 2, (img.height - size) // 2
        return img.crop((left, top, left + min(size, img.width), top + min(size, img.height)))
    if spec.mode == "border" and (img.width != size or img.height != size) and max(img.size) <= size:
        canvas = Image.new("RGB", (size, size), (255, 255, 255))
        canvas.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
        return canvas
    return img


def resize_image(data: bytes, spec: ResizeSpec) -> ResizeResult:
    """Decode, orient, resize and re-encode. Raises DecodeError with a reason."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = _open(data, spec)
            orig_w, orig_h = img.size
            exif_swap = img.getexif().get(0x0112, 1) in (5, 6, 7, 8)
            tw, th = target_size(*((orig_h, orig_w) if exif_swap else (orig_w, orig_h)), spec)
            if img.format == "JPEG" and spec.mode != "no":
                draft_size = (th, tw) if exif_swap else (tw, th)
                img.draft("RGB", draft_size)  # DCT-domain downscale, never below the target
            img = ImageOps.exif_transpose(img)
            orig_w, orig_h = (orig_h, orig_w) if exif_swap else (orig_w, orig_h)
            img = _to_rgb(img)
            if (tw, th) != img.size:
                img = img.resize((tw, th), Image.Resampling.LANCZOS, reducing_gap=3.0)
            img = _place(img, spec)
            out = io.BytesIO()
            fmt = _PIL_FORMATS[spec.encode_format]
            kwargs = {"quality": spec.encode_quality} if fmt in ("JPEG", "WEBP") else {}
            img.save(out, format=fmt, **kwargs)
    except DecodeError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise DecodeError(DropReason.IMAGE_TOO_MANY_PIXELS, str(exc)[:200]) from None
    except _DECODE_ERRORS as exc:
        raise DecodeError(DropReason.IMAGE_UNDECODABLE, f"{type(exc).__name__}: {exc}"[:200]) from None
    return ResizeResult(out.getvalue(), img.width, img.height, orig_w, orig_h)


def resize_fetched(fetched: FetchedImage, spec: ResizeSpec) -> ResizedImage | Rejection:
    try:
        res = resize_image(fetched.data, spec)
    except DecodeError as err:
        return Rejection.of(fetched.pair, err.reason, err.detail)
    return ResizedImage(
        pair=fetched.pair, data=res.data, ext=spec.encode_format, width=res.width, height=res.height,
        original_width=res.original_width, original_height=res.original_height,
        sha256=hashlib.sha256(fetched.data).hexdigest(), final_url=fetched.final_url, mime=fetched.mime)


class _ResizeFn(beam.DoFn):
    def __init__(self, spec: ResizeSpec):
        self.spec = spec

    def process(self, fetched: FetchedImage):
        out = resize_fetched(fetched, self.spec)
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


def resize_spec(cfg) -> ResizeSpec:
    """ResizeSpec from the ``resize`` config section."""
    return ResizeSpec(cfg.image_size, cfg.mode, cfg.resize_only_if_bigger, cfg.encode_format,
                      cfg.encode_quality, cfg.max_pixels)
