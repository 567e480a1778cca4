"""transforms.hashing: the windowed pHash, the colour signature, the padding cut, HashImages."""

import io
from dataclasses import replace

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.util import assert_that, equal_to
from PIL import Image

from pipeline.records import AltPair, ResizedImage, ScoredImage
from pipeline.sample import scenes
from tests.conftest import local_test_pipeline
from pipeline.specs import lsh_spec, resize_spec
from tests.default_specs import spec_with
from transforms.hashing import HashImages, colour_signature, content_box, hash_resized, phash_image, to_hex, with_hashes
from transforms.imaging import resize_image
from transforms.lsh import near_distance

SPEC = spec_with(resize_spec, image_size=128, mode="border")


def _scene(w=240, h=180, seed=1, spec=None):
    return scenes.render_scene(spec or scenes.SceneSpec("star", "red", "blue", 2), (w, h), seed=seed)


def _resized(img, key="k", spec=SPEC):
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=92)
    res = resize_image(buf.getvalue(), spec)
    return ResizedImage(pair=AltPair(key, "http://s/p", f"http://s/{key}.jpg", "a b c"), data=res.data, ext="jpg",
                        width=res.width, height=res.height, original_width=res.original_width,
                        original_height=res.original_height, sha256=key)


def test_hash_is_64_bits_half_set_and_stable():
    value = phash_image(_scene())
    assert 0 <= value < 2**64 and bin(value).count("1") == 32  # median split: balanced
    assert phash_image(_scene()) == value
    assert int(to_hex(value), 16) == value and len(to_hex(value)) == 16  # as transforms/dedupe.py reads it


@pytest.mark.parametrize("change, most", [
    (lambda im: im.resize((120, 90), Image.Resampling.LANCZOS), 4),  # rescale
    (lambda im: Image.open(io.BytesIO(_jpeg(im, 35))).convert("RGB"), 4),  # re-encode
    (lambda im: im.crop((5, 4, 235, 176)), 8),  # ~4 % a side
])
def test_near_duplicates_are_close(change, most):
    img = _scene()
    assert _hamming(phash_image(img), phash_image(change(img))) <= most


def _hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def _near_by_lsh_guards(a, b, colour_delta: int) -> bool:
    """Whether DedupeNear's check (transforms/lsh.py) links two PIL images, the Hamming bound off."""
    spec = spec_with(lsh_spec, threshold=64, colour_delta=colour_delta)
    return near_distance(phash_image(a), colour_signature(a).hex(), phash_image(b), colour_signature(b).hex(),
                         spec) is not None


def _jpeg(img, quality):
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def test_distinct_images_are_far_and_colour_tells_recolourings_apart():
    a = _scene(spec=scenes.SceneSpec("circle", "white", "blue", 1), seed=3)
    b = _scene(spec=scenes.SceneSpec("cross", "green", "purple", 3), seed=4)
    assert _hamming(phash_image(a), phash_image(b)) > 12
    recoloured = _scene(spec=scenes.SceneSpec("circle", "yellow", "purple", 1), seed=3)
    assert not _near_by_lsh_guards(a, recoloured, colour_delta=40)  # the colour guard tells them apart
    assert _near_by_lsh_guards(a, a, colour_delta=0)
    assert len(colour_signature(a)) == 12


def test_border_padding_is_cut_before_hashing():
    wide, tall = _resized(_scene(300, 150)), _resized(_scene(150, 300))
    assert content_box(wide, SPEC) == (0, 32, 128, 96) and content_box(tall, SPEC) == (32, 0, 96, 128)
    assert content_box(wide, spec_with(resize_spec, image_size=128, mode="center_crop")) is None
    # the same picture at two paddings: identical content, identical hash
    img = _scene(200, 150)
    small = _resized(img, spec=spec_with(resize_spec, image_size=128, mode="border"))
    padded_more = _resized(img.resize((180, 135), Image.Resampling.LANCZOS),
                           spec=spec_with(resize_spec, image_size=128, mode="border"))
    assert _hamming(int(hash_resized(small, SPEC)[0], 16), int(hash_resized(padded_more, SPEC)[0], 16)) <= 2


def test_undecodable_bytes_give_empty_hashes():
    image = _resized(_scene())
    broken = replace(image, data=b"not an image")
    assert hash_resized(broken, SPEC) == ("", "")


def test_hash_images_pipeline_sets_both_fields_on_resized_and_scored():
    images = [_resized(_scene(seed=s), key=f"k{s}") for s in range(3)]
    scored = ScoredImage(image=images[0], clip_score=0.5)
    expected = [(im.pair.key, *hash_resized(im, SPEC)) for im in images]
    with local_test_pipeline() as p:
        out = p | "Images" >> beam.Create(images) | "Hash" >> HashImages(SPEC)
        assert_that(out | beam.Map(lambda im: (im.pair.key, im.phash, im.colour_sig)), equal_to(expected))
        again = p | "Scored" >> beam.Create([scored]) | "HashScored" >> HashImages(SPEC)
        assert_that(again | "S" >> beam.Map(lambda s: (s.image.phash, s.clip_score)),
                    equal_to([(expected[0][1], 0.5)]), label="scored")
    assert with_hashes(images[1], SPEC).phash == expected[1][1]
    assert np.all([len(e[1]) == 16 and len(e[2]) == 24 for e in expected])
