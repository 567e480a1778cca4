"""Decode, orient, convert, resize and re-encode one image (pure; Pillow only).

Input: image bytes and a ``ResizeSpec``. Output: ``ResizeResult`` (encoded
bytes, output and original size, img2dataset's ``exif`` text), or ``DecodeError`` with
``image.undecodable`` or ``image.too_many_pixels`` — and for SVG (``spec.svg``: rendered by
transforms/svg.py, then finished here like any raster) ``image.svg_refused``. No Beam import:
decode worker processes import only this module (and Pillow). See transforms/resize.py for
the modes.

EXIF (``ResizeResult.exif``): img2dataset's parquet ``exif`` column, made the way it makes it
(img2dataset/downloader.py): ``json.dumps({tag: str(value).strip()})`` of exifread's
``process_file(original, details=False)`` (ExifRead-nocycle, the fork img2dataset pins: IFD
cycles end). exifread is pure Python, so it runs only when Pillow, which reads the header
anyway for the orientation, found EXIF; otherwise the text is ``"{}"``, what exifread gives
for an image without EXIF. Bounded: tags are kept in exifread's order while the text stays
within ``EXIF_MAX_CHARS``; a tag that would pass it is left out (the text stays a JSON object).
Malformed EXIF never fails the image: an exception in exifread gives ``""`` (img2dataset's null).

Memory: a large image that is not RGB (alpha, palette, grey, CMYK, 16-bit) is
converted one band of rows at a time, and each band is reduced (Pillow's
``reducing_gap`` step) or resized across before the next is converted, so the
peak per image is one decode plus the output, not the four full-size copies that
flattening alpha before the resize made (1.7 GB for an 88 Mpx RGBA PNG; now
~0.4 GB). The pixels are those of flattening first, bit for bit: Pillow's reduce
works on blocks of rows and its resize makes the horizontal pass row by row, so
bands aligned to the reduction factor give the same numbers.
"""

from __future__ import annotations

import io
import json
import logging
import math
import struct
import warnings
from dataclasses import dataclass

import exifread
from PIL import Image, ImageOps, UnidentifiedImageError

from pipeline.records import DropReason
from transforms.image_geometry import DecodeError, target_size
from transforms.phash import colour_signature, phash_image

_PIL_FORMATS = {"jpg": "JPEG", "webp": "WEBP", "png": "PNG"}
_RESAMPLE = {"lanczos": Image.Resampling.LANCZOS, "bicubic": Image.Resampling.BICUBIC,
             "bilinear": Image.Resampling.BILINEAR, "box": Image.Resampling.BOX}
# struct.error: Pillow re-writing a corrupt EXIF block in exif_transpose (found by the EXIF fuzz test)
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, UnidentifiedImageError, Image.DecompressionBombError,
                  EOFError, struct.error)
EXIF_MAX_CHARS = 4096
# exifread logs every oddity of a malformed block at WARNING (img2dataset silences it the same way).
logging.getLogger("exifread").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class ResizeSpec:
    image_size: int  # the resize.* knobs (pipeline/config.py ResizeConfig holds the defaults)
    mode: str
    resize_only_if_bigger: bool
    encode_format: str
    encode_quality: int
    max_pixels: int
    resample: str
    svg: bool  # rasterise SVG (transforms/svg.py); off: SVG bytes are image.undecodable here


@dataclass(frozen=True)
class ResizeResult:
    data: bytes
    width: int
    height: int
    original_width: int
    original_height: int
    phash: str = ""  # of the picture content (no border padding), 16 hex digits
    colour_sig: str = ""  # 24 hex digits; see transforms/hashing.py
    exif: str = ""  # img2dataset's exif column: JSON object text; "" = exifread failed (null)


_REDUCING_GAP = 3.0  # Pillow's: reduce() by the integer factor that leaves >= 3x the target
_BAND_PIXELS = 1 << 21  # pixels converted at a time (~8 MB of RGBA); smaller images in one go


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _bands(img: Image.Image, step: int, out_size: tuple, convert, rows_per_out: int) -> Image.Image:
    """``convert`` applied to bands of ``img``'s rows (a multiple of ``step`` rows each), pasted
    one under the other into an RGB image of ``out_size``; band ``y`` lands at ``y // rows_per_out``."""
    w, h = img.size
    rows = max(step, (_BAND_PIXELS // max(1, w)) // step * step)
    out = Image.new("RGB", out_size)
    for top in range(0, h, rows):
        out.paste(convert(img.crop((0, top, w, min(h, top + rows)))), (0, top // rows_per_out))
    return out


def _rgb_resized(img: Image.Image, size: tuple, resample) -> Image.Image:
    """``_to_rgb(img).resize(size, resample, reducing_gap=3.0)``, without the full-size RGB copy
    for large images that are not RGB (see the module docstring): flatten after the downscale."""
    w, h = img.size
    tw, th = size
    if img.mode == "RGB" or w * h <= _BAND_PIXELS:
        rgb = _to_rgb(img)
        return rgb if rgb.size == size else rgb.resize(size, resample, reducing_gap=_REDUCING_GAP)
    fx, fy = int(w / tw / _REDUCING_GAP) or 1, int(h / th / _REDUCING_GAP) or 1
    if fx > 1 or fy > 1:  # reduce each band by the integer factor, then resize the small image
        reduced = _bands(img, fy, (math.ceil(w / fx), math.ceil(h / fy)),
                         lambda band: _to_rgb(band).reduce((fx, fy)), fy)
        return reduced.resize(size, resample, box=(0, 0, w / fx, h / fy))
    if tw != w:  # Pillow's horizontal pass, band by band (rows are independent), then the vertical
        across = _bands(img, 1, (tw, h),
                        lambda band: _to_rgb(band).resize((tw, band.height), resample, box=(0, 0, w, band.height)), 1)
    else:
        across = _bands(img, 1, (w, h), _to_rgb, 1)  # no resize across: the output is this tall anyway
    return across if th == h else across.resize(size, resample, box=(0, 0, tw, h))


def _open(data: bytes, spec: ResizeSpec) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    # Decode from one buffer in one call (Pillow reads 64 KiB blocks by default):
    # each block costs a copy and a GIL hand-back, and those stall decode threads.
    img.decodermaxblock = max(len(data), 65536)
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


def exif_text(data: bytes, found: bool) -> str:
    """img2dataset's ``exif`` text of the original bytes (see the module docstring).

    ``found``: Pillow found EXIF in the header; without it exifread is not run (``"{}"``)."""
    if not found:
        return "{}"
    try:
        tags = exifread.process_file(io.BytesIO(data), details=False)
        items = {k: str(v).strip() for k, v in tags.items() if v is not None}
    except Exception:  # noqa: BLE001 — any failure of the pure-Python parser on remote bytes: img2dataset's null
        return ""
    text = json.dumps(items)
    if len(text) <= EXIF_MAX_CHARS:
        return text
    kept, size = {}, 2  # "{}"
    for key, value in items.items():
        cost = len(json.dumps({key: value})) - 2 + (2 if kept else 0)  # ", " between items
        if size + cost <= EXIF_MAX_CHARS:
            kept[key], size = value, size + cost
    return json.dumps(kept)


def finish(img: Image.Image, size: tuple, original: tuple, spec: ResizeSpec, exif: str = "") -> ResizeResult:
    """Scale a decoded image to ``size`` (the mode's target), hash it, crop/pad and encode it."""
    img = _rgb_resized(img, size, _RESAMPLE[spec.resample])
    phash, colour = f"{phash_image(img):016x}", colour_signature(img).hex()
    img = _place(img, spec)
    out = io.BytesIO()
    fmt = _PIL_FORMATS[spec.encode_format]
    kwargs = {"quality": spec.encode_quality} if fmt in ("JPEG", "WEBP") else {}
    img.save(out, format=fmt, **kwargs)
    return ResizeResult(out.getvalue(), img.width, img.height, original[0], original[1], phash, colour, exif)


def resize_image(data: bytes, spec: ResizeSpec) -> ResizeResult:
    """Decode, orient, resize and re-encode. Raises DecodeError with a reason."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if spec.svg:
                from transforms import svg  # lxml and the render workers only when SVG is on

                if svg.looks_like_svg(data):
                    return finish(*svg.rasterise(data, spec), spec)
            img = _open(data, spec)
            orig_w, orig_h = img.size
            exif = img.getexif()
            orientation = exif.get(0x0112, 1)
            exif_swap = orientation in (5, 6, 7, 8)
            tw, th = target_size(*((orig_h, orig_w) if exif_swap else (orig_w, orig_h)), spec)
            if img.format == "JPEG" and spec.mode != "no":
                draft_size = (th, tw) if exif_swap else (tw, th)
                img.draft("RGB", draft_size)  # DCT-domain downscale, never below the target
            if orientation != 1:
                img = ImageOps.exif_transpose(img)  # a full copy: only when there is work to do
            orig_w, orig_h = (orig_h, orig_w) if exif_swap else (orig_w, orig_h)
            return finish(img, (tw, th), (orig_w, orig_h), spec, exif_text(data, len(exif) > 0))
    except DecodeError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise DecodeError(DropReason.IMAGE_TOO_MANY_PIXELS, str(exc)[:200]) from None
    except _DECODE_ERRORS as exc:
        raise DecodeError(DropReason.IMAGE_UNDECODABLE, f"{type(exc).__name__}: {exc}"[:200]) from None
