"""Our resizer against img2dataset's own, on the same inputs: same sizes, close pixels."""

import io
import os

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
resizer_mod = pytest.importorskip("img2dataset.resizer")

from bench.common import photo_like  # noqa: E402
from transforms.resize import ResizeSpec, resize_image  # noqa: E402

SIZES = [(640, 480), (300, 900), (1200, 1100), (200, 120)]


def _inputs():
    rng = np.random.default_rng(3)
    out = []
    for w, h in SIZES:
        buf = io.BytesIO()
        photo_like(rng, w, h).save(buf, format="JPEG", quality=92)
        out.append(buf.getvalue())
    return out


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@pytest.mark.parametrize("mode", ["border", "keep_ratio", "keep_ratio_largest", "center_crop", "no"])
def test_same_dimensions_and_close_pixels(mode):
    theirs = resizer_mod.Resizer(image_size=128, resize_mode=mode, resize_only_if_bigger=False, encode_quality=95)
    for data in _inputs():
        img_bytes, width, height, ow, oh, err = theirs(io.BytesIO(data))
        assert err is None
        ours = resize_image(data, ResizeSpec(image_size=128, mode=mode, encode_quality=95))
        assert (ours.width, ours.height, ours.original_width, ours.original_height) == (width, height, ow, oh)
        a = np.asarray(Image.open(io.BytesIO(ours.data)).convert("RGB"))
        b = np.asarray(Image.open(io.BytesIO(img_bytes)).convert("RGB"))
        assert _psnr(a, b) > 28, f"{mode} {ow}x{oh}: PSNR {_psnr(a, b):.1f} dB"
