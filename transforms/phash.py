"""Perceptual hash and colour signature of a PIL image (pure: numpy and Pillow only).

Input: a PIL image. Output: ``phash_image`` -> 64-bit int, ``colour_signature`` -> 12
bytes. Nothing is dropped. Lives apart from transforms/hashing.py (the Beam stage) so
the resize core (transforms/imaging.py) can hash the pixels it already holds, before
encoding, instead of decoding its own output again. The method is documented in
transforms/hashing.py.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

HASH_SIDE = 8  # 8x8 DCT coefficients -> 64 bits
DCT_SIDE = 32  # thumbnail side (imagehash's highfreq_factor 4)
HASH_BITS = HASH_SIDE * HASH_SIDE


@functools.lru_cache(maxsize=4)
def _dct_matrix(n: int) -> np.ndarray:
    """DCT-II basis (unnormalised: scale does not change which side of the median a coefficient is)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    return np.cos(np.pi * (2 * i + 1) * k / (2 * n))


@functools.lru_cache(maxsize=4)
def _window(n: int) -> np.ndarray:
    """Separable sine window: 1 in the middle, ~0 at the border."""
    ramp = np.sin(np.pi * (np.arange(n) + 0.5) / n)
    return np.outer(ramp, ramp)


def phash_image(img: Image.Image) -> int:
    """The 64-bit windowed pHash of a PIL image, as an int (bit 63 = coefficient (0, 0))."""
    # reducing_gap: box-average by an integer factor first, Lanczos the rest of the
    # way (Pillow's own fast path): half the cost, 0.15 bits apart on average.
    grey = img.convert("L").resize((DCT_SIDE, DCT_SIDE), Image.Resampling.LANCZOS, reducing_gap=2.0)
    pixels = np.asarray(grey, dtype=np.float64)
    pixels = (pixels - pixels.mean()) * _window(DCT_SIDE)
    basis = _dct_matrix(DCT_SIDE)
    low = (basis @ pixels @ basis.T)[:HASH_SIDE, :HASH_SIDE].ravel()
    bits = low > np.median(low)
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def colour_signature(img: Image.Image) -> bytes:
    """Mean Y, Cb, Cr of each quarter (2x2 box average): 12 bytes.

    Averaged in RGB, then converted: the conversion is affine, so this is the
    YCbCr average up to rounding, at a quarter of the cost.
    """
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    quarters = rgb.resize((2, 2), Image.Resampling.BOX).convert("YCbCr")
    return np.asarray(quarters, dtype=np.uint8).tobytes()
