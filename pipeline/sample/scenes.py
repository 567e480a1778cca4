"""Synthetic scenes for the offline sample web: coloured shapes on coloured backgrounds.

Input: a ``SceneSpec`` (shape, colour, background, count) and a seed.
Output: a deterministic RGB ``PIL.Image`` (bit-identical for the same arguments),
its JPEG/PNG bytes, and English captions that name the shape, the colour and the
background. The scenes are simple enough for a small CLIP model to learn, and
photo-ish enough (gradient + noise) that JPEG bytes look like real photos.
No drop reasons: this module only makes data.
"""

from __future__ import annotations

import io
import itertools
import math
import random
from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

COLOURS: "OrderedDict[str, tuple[int, int, int]]" = OrderedDict(
    [
        ("red", (215, 35, 35)),
        ("green", (35, 165, 60)),
        ("blue", (35, 75, 215)),
        ("yellow", (240, 215, 35)),
        ("purple", (135, 55, 175)),
        ("orange", (245, 135, 25)),
        ("white", (242, 242, 242)),
        ("black", (22, 22, 22)),
    ]
)
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")
COUNTS: tuple[int, ...] = (1, 2, 3)
_COUNT_WEIGHTS = (0.6, 0.25, 0.15)
_PLURALS = {"cross": "crosses"}
_COUNT_WORDS = {2: "two", 3: "three"}
_SUPERSAMPLE = 2
# Every template names shape, colour and background (through ``{}``).
CAPTION_TEMPLATES: tuple[str, ...] = (
    "{}",
    "a photo of {}",
    "an illustration of {}",
    "a simple drawing of {}",
    "{}, digital art",
)


@dataclass(frozen=True)
class SceneSpec:
    """What a scene shows: ``count`` shapes of one colour on a background colour."""

    shape: str
    colour: str
    background: str
    count: int = 1

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; expected one of {SHAPES}")
        for name in (self.colour, self.background):
            if name not in COLOURS:
                raise ValueError(f"unknown colour {name!r}; expected one of {list(COLOURS)}")
        if self.colour == self.background:
            raise ValueError("shape colour must differ from the background colour")
        if self.count not in COUNTS:
            raise ValueError(f"count must be one of {COUNTS}, got {self.count}")


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def describe(spec: SceneSpec) -> str:
    """The plain description: ``"a red circle on a blue background"``."""
    if spec.count == 1:
        subject = f"{_article(spec.colour)} {spec.colour} {spec.shape}"
    else:
        plural = _PLURALS.get(spec.shape, spec.shape + "s")
        subject = f"{_COUNT_WORDS[spec.count]} {spec.colour} {plural}"
    return f"{subject} on {_article(spec.background)} {spec.background} background"


def caption_for(spec: SceneSpec, rng: Optional[random.Random] = None) -> str:
    """A descriptive English caption; with ``rng``, one of ``CAPTION_TEMPLATES``."""
    body = describe(spec)
    if rng is None:
        return body
    return rng.choice(CAPTION_TEMPLATES).format(body)


def random_spec(rng: random.Random) -> SceneSpec:
    """One spec drawn from ``rng`` (a ``random.Random``)."""
    shape = rng.choice(SHAPES)
    colour = rng.choice(list(COLOURS))
    background = rng.choice([c for c in COLOURS if c != colour])
    count = rng.choices(COUNTS, weights=_COUNT_WEIGHTS)[0]
    return SceneSpec(shape, colour, background, count)


def random_specs(seed: int, n: int) -> list[SceneSpec]:
    """``n`` specs, the same list for the same ``seed``."""
    rng = random.Random(seed)
    return [random_spec(rng) for _ in range(n)]


def all_specs() -> list[SceneSpec]:
    """Every distinct spec, in a fixed order (shape, colour, background, count)."""
    return [
        SceneSpec(shape, colour, background, count)
        for shape, colour, background, count in itertools.product(SHAPES, COLOURS, COLOURS, COUNTS)
        if colour != background
    ]


def mismatched_spec(spec: SceneSpec, rng: random.Random) -> SceneSpec:
    """A spec that differs in shape, colour and background, for wrong captions.

    The new colours avoid both of the original's colours, so a caption built from
    it shares no colour word with the image (no accidental partial match).
    """
    shape = rng.choice([s for s in SHAPES if s != spec.shape])
    used = {spec.colour, spec.background}
    colour = rng.choice([c for c in COLOURS if c not in used])
    background = rng.choice([c for c in COLOURS if c not in used and c != colour])
    return SceneSpec(shape, colour, background, spec.count)


def _cells(count: int, w: int, h: int, rng: np.random.Generator) -> list[tuple[float, float, float, float]]:
    """Non-overlapping cells (x, y, cw, ch), one per shape, so shapes never hide each other."""
    if count == 1:
        return [(0.0, 0.0, float(w), float(h))]
    long_side, short_side = max(w, h), min(w, h)
    if count == 2 or long_side >= 1.5 * short_side:
        step = long_side / count
        if w >= h:
            return [(i * step, 0.0, step, float(h)) for i in range(count)]
        return [(0.0, i * step, float(w), step) for i in range(count)]
    grid = [(x * w / 2, y * h / 2, w / 2, h / 2) for y in range(2) for x in range(2)]
    skip = int(rng.integers(0, 4))
    return [cell for i, cell in enumerate(grid) if i != skip]


def _ring(n: int, start: float, radii: tuple[float, ...] = (1.0,)) -> list[tuple[float, float]]:
    """``n`` points evenly spaced on circles of alternating ``radii``, from angle ``start``."""
    points = []
    for k in range(n):
        theta, rad = start + k * 2 * math.pi / n, radii[k % len(radii)]
        points.append((rad * math.cos(theta), rad * math.sin(theta)))
    return points


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    """Vertices of ``shape`` within radius ``r`` of (cx, cy), rotated by ``angle``."""
    if shape == "square":
        pts = _ring(4, math.pi / 4)
    elif shape == "triangle":
        pts = [(x, y + 0.15) for x, y in _ring(3, -math.pi / 2)]  # centre its mass in the box
    elif shape == "star":
        pts = _ring(10, -math.pi / 2, (1.0, 0.45))
    elif shape == "cross":
        a, b = 0.32, 0.9
        pts = [(-a, -b), (a, -b), (a, -a), (b, -a), (b, a), (a, a),
               (a, b), (-a, b), (-a, a), (-b, a), (-b, -a), (-a, -a)]
    else:
        raise ValueError(f"no polygon for {shape!r}")
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    return [(cx + r * (x * cos_a - y * sin_a), cy + r * (x * sin_a + y * cos_a)) for x, y in pts]


def _shape_mask(spec: SceneSpec, w: int, h: int, rng: np.random.Generator) -> Image.Image:
    """Anti-aliased coverage mask, mode "L" (drawn supersampled, box-downsampled)."""
    ss = _SUPERSAMPLE
    canvas = Image.new("L", (w * ss, h * ss), 0)
    draw = ImageDraw.Draw(canvas)
    for cx0, cy0, cw, ch in _cells(spec.count, w, h, rng):
        frac = (0.6, 0.85) if spec.count == 1 else (0.7, 0.9)
        size = float(rng.uniform(*frac)) * min(cw, ch)
        cx = cx0 + size / 2 + float(rng.uniform(0, cw - size))
        cy = cy0 + size / 2 + float(rng.uniform(0, ch - size))
        r = size / 2 * ss
        cx, cy = cx * ss, cy * ss
        if spec.shape == "circle":
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        else:
            angle = math.radians(float(rng.uniform(-12, 12)))
            draw.polygon(_polygon(spec.shape, cx, cy, r, angle), fill=255)
    return canvas.resize((w, h), Image.Resampling.BOX)


def _background(name: str, w: int, h: int, rng: np.random.Generator) -> Image.Image:
    """The background colour with a mild linear gradient in a random direction."""
    base = np.array(COLOURS[name], dtype=np.float32)
    theta = float(rng.uniform(0, 2 * math.pi))
    amplitude = float(rng.uniform(10, 22))
    xs = (np.arange(w, dtype=np.float32) / max(w - 1, 1) - 0.5) * (amplitude * math.cos(theta))
    ys = (np.arange(h, dtype=np.float32) / max(h - 1, 1) - 0.5) * (amplitude * math.sin(theta))
    ramp = ys[:, None, None] + xs[None, :, None] + base[None, None, :] + np.float32(0.5)
    return Image.fromarray(np.clip(ramp, 0, 255).astype(np.uint8), "RGB")


def render_scene(spec: SceneSpec, size: Sequence[int] = (256, 256), seed: int = 0) -> Image.Image:
    """Render ``spec`` as an RGB image of ``size`` = (width, height).

    Shape position, size and rotation are jittered by ``seed``; the result is
    bit-identical for the same arguments. Shapes span at least ~30% of the short side.
    """
    w, h = int(size[0]), int(size[1])
    if w < 1 or h < 1:
        raise ValueError(f"size must be positive, got {size}")
    rng = np.random.default_rng([abs(int(seed)), w, h])
    background = _background(spec.background, w, h, rng)
    mask = _shape_mask(spec, w, h, rng)
    shade = float(rng.uniform(0.94, 1.04))
    colour = tuple(min(255, round(c * shade)) for c in COLOURS[spec.colour])
    scene = Image.composite(Image.new("RGB", (w, h), colour), background, mask)
    # Sensor-like noise, so JPEG bytes look like a photo's rather than flat art.
    pixels = np.asarray(scene, dtype=np.int16) + rng.integers(-7, 8, size=(h, w, 3), dtype=np.int16)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def encode_jpeg(img: Image.Image, quality: int = 90) -> bytes:
    """Baseline JPEG bytes (deterministic: no optimisation pass, no metadata)."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=int(quality), optimize=False, progressive=False)
    return buf.getvalue()


def encode_png(img: Image.Image) -> bytes:
    """PNG bytes (deterministic: fixed compression level, no metadata)."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def rescale(img: Image.Image, factor: float) -> Image.Image:
    """``img`` resized by ``factor`` (near-duplicate variant)."""
    w, h = img.size
    return img.resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.Resampling.LANCZOS)


def crop_fraction(img: Image.Image, left: float, top: float, right: float, bottom: float) -> Image.Image:
    """``img`` with the given fractions of width/height cut from each side."""
    w, h = img.size
    box = (round(w * left), round(h * top), w - round(w * right), h - round(h * bottom))
    return img.crop(box)


__all__ = [
    "CAPTION_TEMPLATES",
    "COLOURS",
    "COUNTS",
    "SHAPES",
    "SceneSpec",
    "all_specs",
    "caption_for",
    "crop_fraction",
    "describe",
    "encode_jpeg",
    "encode_png",
    "mismatched_spec",
    "random_spec",
    "random_specs",
    "render_scene",
    "rescale",
]
