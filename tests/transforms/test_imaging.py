"""transforms.imaging: large images that are not RGB are flattened after the downscale, band by band,
with the same pixels as flattening first and a peak of about one decode."""

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st
import pytest
from PIL import Image

from pipeline.specs import resize_spec
from tests.default_specs import spec_with
from transforms import imaging

ROOT = Path(__file__).resolve().parents[2]


def _flatten_first(img, size, resample):
    """What resize_image did before: the whole image to RGB, then the resize."""
    rgb = imaging._to_rgb(img)
    return rgb if rgb.size == size else rgb.resize(size, resample, reducing_gap=3.0)


def _image(mode: str, w: int, h: int) -> Image.Image:
    rng = np.random.default_rng(w * 1000 + h)
    rgba = Image.fromarray(rng.integers(0, 256, (h, w, 4), dtype=np.uint8), "RGBA")
    if mode == "P+transparency":
        img = rgba.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
        img.info["transparency"] = 3
        return img
    if mode == "I;16":
        return Image.frombytes("I;16", (w, h), rng.integers(0, 65535, (h, w)).astype("<u2").tobytes())
    return rgba.convert(mode)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA", "P+transparency", "P", "L", "1", "CMYK", "I;16", "RGB"])
@pytest.mark.parametrize("w,h,size,resample", [
    (301, 203, (40, 27), "bicubic"),     # reduce() by (2, 2) band by band, then the resize
    (97, 410, (10, 42), "lanczos"),      # by (3, 3)
    (301, 203, (16, 203), "bicubic"),    # by (6, 1)
    (301, 203, (150, 101), "bicubic"),   # no integer reduction: the horizontal pass band by band
    (97, 410, (60, 254), "box"),
    (301, 203, (301, 203), "bicubic"),   # no resize: flattened band by band
    (301, 203, (520, 350), "lanczos"),   # upscale
    (301, 203, (301, 60), "bicubic"),    # vertical only
    (97, 410, (40, 410), "bicubic"),     # horizontal only
])
def test_banded_flattening_gives_the_pixels_of_flattening_first(monkeypatch, mode, w, h, size, resample):
    monkeypatch.setattr(imaging, "_BAND_PIXELS", 3000)  # small images take the banded path too
    img = _image(mode, w, h)
    got = imaging._rgb_resized(img, size, imaging._RESAMPLE[resample])
    want = _flatten_first(img, size, imaging._RESAMPLE[resample])
    assert got.mode == "RGB" and got.size == want.size and got.tobytes() == want.tobytes()


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def write_rgba_png(path: Path, w: int, h: int) -> None:
    """A w x h 8-bit RGBA PNG of 64-row bands (colour ramps, four alpha levels): small on disk,
    w*h*4 bytes decoded. Rows after a band's first use PNG's "Up" filter: all zeros."""
    ramp = bytes(b for x in range(w) for b in (x * 255 // w, 90, 200, (x // 7 % 4) * 85))
    comp, idat = zlib.compressobj(1), []
    for y in range(h):
        idat.append(comp.compress(b"\x00" + ramp if y % 64 == 0 else b"\x02" + bytes(4 * w)))
    idat.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(idat)) + _chunk(b"IEND", b"")
    path.write_bytes(png)


_PEAK = """
import os, resource, sys
if os.environ.get("WIT_MUTATION"):  # the guard-mutation harness reaches into this process too
    import tests.mutation.plugin as plugin
    plugin.pytest_configure(None)
from pipeline.specs import resize_spec
from tests.default_specs import spec_with
from transforms.imaging import resize_image
data = open(sys.argv[1], "rb").read()
spec = spec_with(resize_spec, image_size=256, mode="border", max_pixels=10**9)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
res = resize_image(data, spec)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(res.original_width * res.original_height * 4, (after - before) * 1024)
"""


def test_peak_memory_of_a_large_rgba_png_is_about_one_decode(tmp_path):
    """36 Mpx RGBA (144 MB decoded, ~1 s): flattening at full size first peaked at ~4.8x the decode."""
    path = tmp_path / "big.png"
    write_rgba_png(path, 6000, 6000)
    proc = subprocess.run([sys.executable, "-c", _PEAK, str(path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr[-2000:]
    decoded, grown = map(int, proc.stdout.split())
    assert decoded == 6000 * 6000 * 4
    assert grown < 1.6 * decoded, f"peak grew by {grown / decoded:.2f}x the decoded size"


# -- EXIF: img2dataset's exif text (its parquet column), bounded, never failing the image --------


def _jpeg_with_exif(exif: Image.Exif, size=(40, 30)) -> bytes:
    import io

    buf = io.BytesIO()
    Image.new("RGB", size, (200, 100, 50)).save(buf, format="JPEG", exif=exif.tobytes())
    return buf.getvalue()


def _camera_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "Canon", "EOS 5D", 6
    from PIL.TiffImagePlugin import IFDRational

    exif.get_ifd(0x8769)[0x829A] = IFDRational(1, 60)  # ExposureTime
    return exif


def test_exif_text_is_exifreads_printable_json():
    import json

    res = imaging.resize_image(_jpeg_with_exif(_camera_exif()), spec_with(resize_spec, image_size=32))
    tags = json.loads(res.exif)
    assert tags["Image Make"] == "Canon" and tags["Image Model"] == "EOS 5D"
    assert tags["Image Orientation"] == "Rotated 90 CW" and tags["EXIF ExposureTime"] == "1/60"
    assert (res.original_width, res.original_height) == (30, 40)  # the orientation still applies


def test_no_exif_is_an_empty_object_without_running_exifread(monkeypatch):
    import io

    def boom(*_a, **_k):
        raise AssertionError("exifread ran on an image without EXIF")

    monkeypatch.setattr(imaging.exifread, "process_file", boom)
    buf = io.BytesIO()
    Image.new("RGB", (20, 20)).save(buf, format="PNG")
    assert imaging.resize_image(buf.getvalue(), spec_with(resize_spec, image_size=16)).exif == "{}"


def test_exif_text_is_capped_and_stays_a_json_object():
    import json

    exif = _camera_exif()
    exif[0x010E] = "d" * 3000  # ImageDescription
    exif[0x013B] = "a" * 3000  # Artist
    text = imaging.exif_text(_jpeg_with_exif(exif), True)
    assert len(text) <= imaging.EXIF_MAX_CHARS
    tags = json.loads(text)
    assert tags["Image Make"] == "Canon" and "Image ImageDescription" in tags and "Image Artist" not in tags


def test_exifread_failure_is_null_not_an_image_failure(monkeypatch):
    def broken(*_a, **_k):
        raise struct.error("unpack requires a buffer of 4 bytes")

    monkeypatch.setattr(imaging.exifread, "process_file", broken)
    res = imaging.resize_image(_jpeg_with_exif(_camera_exif()), spec_with(resize_spec, image_size=32))
    assert res.exif == "" and res.width == 32


_EXIF_JPEG = _jpeg_with_exif(_camera_exif())
_APP1 = _EXIF_JPEG.index(b"Exif\x00\x00")


@pytest.mark.fuzz
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 160), st.integers(0, 255)), min_size=1, max_size=12))
def test_corrupted_exif_blocks_never_raise(edits):
    """Bytes of the APP1 EXIF block overwritten: the image decodes or is a DecodeError; exif is "" or JSON."""
    import json

    data = bytearray(_EXIF_JPEG)
    for offset, value in edits:
        data[min(len(data) - 1, _APP1 + 6 + offset)] = value
    try:
        res = imaging.resize_image(bytes(data), spec_with(resize_spec, image_size=16))
    except imaging.DecodeError:
        return
    assert res.exif == "" or isinstance(json.loads(res.exif), dict)
    assert len(res.exif) <= imaging.EXIF_MAX_CHARS
