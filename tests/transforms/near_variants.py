"""Generated near-duplicate groups for the quality test and bench (helper module, no tests).

A group is a base image and its variants: re-encoded at another JPEG quality,
rescaled, cropped, colour-shifted, plus its mirror image as a *non*-duplicate
control (its own group). Bases alternate between sample scenes (distinct specs:
flat shapes on gradients, the hard case for a luminance hash) and photo-like
textures (1/f noise, the statistics of natural images). Every image goes through
the pipeline's own resize and hashing, so the hashes are the ones DedupeNear sees.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from pipeline.specs import resize_spec
from tests.default_specs import spec_with
from pipeline.records import AltPair, ResizedImage
from pipeline.sample import scenes
from transforms.hashing import hash_resized
from transforms.imaging import resize_image

SPEC = spec_with(resize_spec, image_size=256, mode="border")
VARIANTS = ("reencode", "rescale", "crop", "colour")


@dataclass(frozen=True)
class Item:
    group: str  # items of one group are near-duplicates of each other
    variant: str  # base | reencode | rescale | crop | colour | mirror
    phash: int
    colour: bytes


def photo_texture(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """1/f ("pink") noise in three correlated channels: photo-like spectrum, no shapes."""
    w, h = size
    nrng = np.random.default_rng(rng.randrange(2**31))
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
    freq = np.sqrt(fx**2 + fy**2)
    freq[0, 0] = 1.0
    amplitude = 1.0 / freq
    amplitude[0, 0] = 0.0
    shared = nrng.uniform(0, 2 * np.pi, size=amplitude.shape)
    channels = []
    for _ in range(3):
        x = np.fft.irfft2(amplitude * np.exp(1j * (shared + nrng.normal(0, 0.6, size=amplitude.shape))), s=(h, w))
        channels.append((x - x.mean()) / (x.std() + 1e-9))
    pixels = np.stack(channels, -1) * 45 + nrng.uniform(70, 185, size=3) + nrng.normal(0, 4, size=(h, w, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def crop(img: Image.Image, rng: random.Random, max_fraction: float, by_area: bool) -> Image.Image:
    """Cut up to ``max_fraction`` of the area (by_area) or of each side's length, split randomly."""
    if by_area:
        area, share = rng.uniform(0.01, max_fraction), rng.random()
        fx, fy = 1 - (1 - area) ** share, 1 - (1 - area) ** (1 - share)
    else:
        fx, fy = rng.uniform(0.01, max_fraction), rng.uniform(0.01, max_fraction)
    w, h = img.size
    left, top = rng.uniform(0, fx), rng.uniform(0, fy)
    return img.crop((round(w * left), round(h * top), w - round(w * (fx - left)), h - round(h * (fy - top))))


def colour_shift(img: Image.Image, rng: random.Random) -> Image.Image:
    """Each channel moved by up to 12 levels, saturation changed by up to 15 %."""
    shifted = np.asarray(img, dtype=np.int16) + np.array([rng.randint(-12, 12) for _ in range(3)], dtype=np.int16)
    out = Image.fromarray(np.clip(shifted, 0, 255).astype(np.uint8))
    return ImageEnhance.Color(out).enhance(rng.uniform(0.85, 1.15))


def variant_bytes(img: Image.Image, rng: random.Random, crop_by_area: bool) -> dict[str, bytes]:
    w, h = img.size
    scale = rng.uniform(0.5, 0.9)
    return {
        "base": jpeg(img),
        "reencode": jpeg(img, rng.randint(30, 75)),
        "rescale": jpeg(img.resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS)),
        "crop": jpeg(crop(img, rng, 0.10, crop_by_area)),
        "colour": jpeg(colour_shift(img, rng)),
        "mirror": jpeg(ImageOps.mirror(img)),
    }


def hashed(data: bytes) -> tuple[int, bytes]:
    """(pHash, colour signature) exactly as ResizeImages + HashImages compute them."""
    res = resize_image(data, SPEC)
    image = ResizedImage(pair=AltPair("k", "p", "u", "c"), data=res.data, ext="jpg", width=res.width,
                         height=res.height, original_width=res.original_width,
                         original_height=res.original_height, sha256="")
    phash, colour = hash_resized(image, SPEC)
    return int(phash, 16), bytes.fromhex(colour)


def generate(groups: int, seed: int = 0, crop_by_area: bool = True) -> list[Item]:
    """``groups`` groups; even ones on distinct scene specs, odd ones on photo-like textures."""
    rng = random.Random(seed)
    specs = scenes.all_specs()
    rng.shuffle(specs)
    items = []
    for g in range(groups):
        size = (rng.randint(160, 320), rng.randint(160, 320))
        if g % 2 == 0:
            base = scenes.render_scene(specs[(g // 2) % len(specs)], size, seed=rng.randrange(2**31))
        else:
            base = photo_texture(rng, size)
        for variant, data in variant_bytes(base, rng, crop_by_area).items():
            group = f"{g}m" if variant == "mirror" else str(g)
            items.append(Item(group, variant, *hashed(data)))
    return items
