"""Scene specs, captions and rendering: deterministic, valid and clearly visible."""

import io
import random

import numpy as np
import pytest
from PIL import Image

from pipeline.sample.scenes import (
    CAPTION_TEMPLATES,
    COLOURS,
    SHAPES,
    SceneSpec,
    all_specs,
    caption_for,
    crop_fraction,
    describe,
    encode_jpeg,
    encode_png,
    mismatched_spec,
    random_specs,
    render_scene,
    rescale,
)


@pytest.mark.parametrize(
    "spec, caption",
    [
        (SceneSpec("circle", "red", "blue"), "a red circle on a blue background"),
        (SceneSpec("triangle", "green", "white", 2), "two green triangles on a white background"),
        (SceneSpec("cross", "orange", "black", 3), "three orange crosses on a black background"),
        (SceneSpec("star", "yellow", "orange"), "a yellow star on an orange background"),
        (SceneSpec("square", "orange", "purple"), "an orange square on a purple background"),
    ],
)
def test_caption_for_plain(spec, caption):
    assert caption_for(spec) == caption == describe(spec)


def test_every_template_names_shape_colour_and_background():
    rng = random.Random(0)
    seen = set()
    for spec in all_specs():
        for _ in range(3):
            caption = caption_for(spec, rng)
            seen.add(caption.replace(describe(spec), "{}"))
            words = caption.replace(",", "").split()
            assert spec.colour in words and spec.background in words
            assert any(w.startswith(spec.shape) for w in words), caption
            assert 3 <= len(words) <= 64
    assert seen == set(CAPTION_TEMPLATES)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(shape="circle", colour="red", background="red"),
        dict(shape="hexagon", colour="red", background="blue"),
        dict(shape="circle", colour="teal", background="blue"),
        dict(shape="circle", colour="red", background="blue", count=4),
    ],
)
def test_invalid_specs_raise(kwargs):
    with pytest.raises(ValueError):
        SceneSpec(**kwargs)


def test_random_specs_deterministic():
    assert random_specs(7, 50) == random_specs(7, 50)
    assert random_specs(7, 50) != random_specs(8, 50)
    assert len(random_specs(0, 13)) == 13


def test_all_specs_distinct_and_complete():
    specs = all_specs()
    assert len(specs) == len(set(specs)) == len(SHAPES) * len(COLOURS) * (len(COLOURS) - 1) * 3


def test_mismatched_spec_differs_everywhere():
    rng = random.Random(3)
    for spec in all_specs():
        wrong = mismatched_spec(spec, rng)
        assert wrong.shape != spec.shape
        assert {wrong.colour, wrong.background}.isdisjoint({spec.colour, spec.background})


def test_render_is_deterministic_and_sized():
    spec = SceneSpec("star", "purple", "yellow", 2)
    a = render_scene(spec, (240, 180), seed=5)
    b = render_scene(spec, (240, 180), seed=5)
    assert a.mode == "RGB" and a.size == (240, 180)
    assert a.tobytes() == b.tobytes()
    assert encode_jpeg(a) == encode_jpeg(b)
    assert encode_png(a) == encode_png(b)
    assert render_scene(spec, (240, 180), seed=6).tobytes() != a.tobytes()


def _shape_pixels(img: Image.Image, spec: SceneSpec) -> np.ndarray:
    px = np.asarray(img, dtype=np.float32)
    to_fg = np.linalg.norm(px - np.array(COLOURS[spec.colour], np.float32), axis=-1)
    to_bg = np.linalg.norm(px - np.array(COLOURS[spec.background], np.float32), axis=-1)
    return to_fg < to_bg


@pytest.mark.parametrize("size", [(160, 213), (240, 240), (320, 240), (728, 90)])
def test_shapes_are_large_and_background_is_not_flat(size):
    for i, spec in enumerate(random_specs(11, 40)):
        if size[0] / size[1] > 3:
            spec = SceneSpec(spec.shape, spec.colour, spec.background, 1)
        img = render_scene(spec, size, seed=i)
        fg = _shape_pixels(img, spec)
        ys, xs = np.nonzero(fg)
        extent = max(xs.max() - xs.min(), ys.max() - ys.min()) + 1
        assert extent >= 0.3 * min(size), (spec, size)
        assert fg.sum() > 0.05 * min(size) ** 2
        background = np.asarray(img, dtype=np.float32)[~fg]
        assert background.std(axis=0).max() > 1.5  # noise + gradient, not a flat fill


def test_encode_and_variants():
    img = render_scene(SceneSpec("circle", "white", "black"), (200, 200), seed=1)
    data = encode_jpeg(img)
    assert data[:3] == b"\xff\xd8\xff"
    assert len(encode_jpeg(img, quality=50)) < len(data)
    assert Image.open(io.BytesIO(data)).size == (200, 200)
    assert rescale(img, 0.8).size == (160, 160)
    assert crop_fraction(img, 0.05, 0.05, 0.0, 0.0).size == (190, 190)
