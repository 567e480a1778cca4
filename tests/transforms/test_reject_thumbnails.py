"""transforms/reject_thumbnails.py: a thumbnail of every pair dropped after download, and only those."""

from __future__ import annotations

import io
import pickle

import apache_beam as beam
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from pipeline.config import CurateConfig, OutputConfig
from pipeline.specs import thumbnail_spec
from pipeline.records import AltPair, BlobRef, DropReason, Rejection, ResizedImage, ScoredImage
from tests.conftest import local_test_pipeline
from transforms.reject_thumbnails import (JPEG_QUALITY, POST_DOWNLOAD_STAGES, ThumbnailSpec, image_ref, make_thumbnail,
                                          thumbnail_sources, with_thumbnail)

SPEC = ThumbnailSpec(96, JPEG_QUALITY)


def _encoded(size, mode="RGB", fmt="JPEG", colour=(200, 30, 40)) -> bytes:
    buf = io.BytesIO()
    fill = colour if mode == "RGB" else (*colour, 0)
    Image.new(mode, size, fill).save(buf, fmt)
    return buf.getvalue()


def _decoded(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


@pytest.mark.parametrize("size, mode, fmt, expected", [
    ((256, 128), "RGB", "JPEG", (96, 48)),  # longest side to 96, aspect kept
    ((128, 256), "RGB", "WEBP", (48, 96)),
    ((16, 16), "RGB", "PNG", (16, 16)),  # never upscaled
    ((300, 300), "RGBA", "PNG", (96, 96)),  # alpha: composited on white
])
def test_thumbnail_is_a_small_jpeg(size, mode, fmt, expected):
    thumb = make_thumbnail(_encoded(size, mode, fmt), SPEC)
    img = _decoded(thumb)
    assert img.format == "JPEG" and img.mode == "RGB" and img.size == expected
    if mode == "RGBA":  # fully transparent: white, not black
        assert min(img.getpixel((img.width // 2, img.height // 2))) > 240
    assert len(thumb) < 4000


@pytest.mark.parametrize("data", [b"", b"not an image", _encoded((64, 64))[:40]])
def test_bytes_that_do_not_decode_give_no_thumbnail(data):
    assert make_thumbnail(data, SPEC) is None


@pytest.mark.fuzz
@given(st.binary(max_size=2048))
def test_any_bytes_give_a_thumbnail_or_none(data):
    thumb = make_thumbnail(data, ThumbnailSpec(32, JPEG_QUALITY))
    assert thumb is None or _decoded(thumb).format == "JPEG"


def test_spec_from_config_and_its_limits():
    assert thumbnail_spec(CurateConfig()) == ThumbnailSpec(96, JPEG_QUALITY)
    assert thumbnail_spec(CurateConfig(output=OutputConfig(reject_thumbnail_size=48))).size == 48
    assert thumbnail_spec(CurateConfig(output=OutputConfig(reject_thumbnails=False))) is None
    for bad in (0, -3, 5000):
        with pytest.raises(ValueError, match="reject_thumbnail_size"):
            ThumbnailSpec(bad, JPEG_QUALITY)


def _image(key: str, data: bytes = b"", blob=None, url=None) -> ResizedImage:
    pair = AltPair(key, "http://s/p", url or f"http://s/{key}.jpg", f"caption {key}")
    return ResizedImage(pair=pair, data=data, ext="jpg", width=64, height=64, original_width=64,
                        original_height=64, sha256=key, blob=blob)


def _rejection(image: ResizedImage, reason=DropReason.CLIP_BELOW_THRESHOLD) -> Rejection:
    return Rejection.of(image.pair, reason, "0.1 < 0.55")


def test_the_thumbnail_is_of_the_rejected_pairs_own_image():
    mine, other = _image("k1", _encoded((64, 64))), _image("k1", _encoded((64, 64), colour=(0, 0, 255)),
                                                           url="http://s/someone-else.jpg")
    rejection = _rejection(mine)
    refs = [image_ref(other)[1], image_ref(mine)[1]]
    thumb = with_thumbnail(rejection, refs, SPEC).thumbnail
    assert _decoded(thumb).getpixel((10, 10))[0] > 150  # red: its own image, not the blue one
    assert with_thumbnail(rejection, [image_ref(other)[1]], SPEC).thumbnail is None


def test_spilled_bytes_are_read_back_and_a_missing_blob_is_no_thumbnail(tmp_path):
    data = b"xx" + _encoded((64, 32))
    blob = tmp_path / "a.blob"
    blob.write_bytes(data)
    spilled = _image("k2", blob=BlobRef(str(blob), 2, len(data) - 2))
    key, ref = image_ref(ScoredImage(image=spilled, clip_score=0.1))
    assert key == "k2" and ref.data == b""
    assert _decoded(with_thumbnail(_rejection(spilled), [ref], SPEC).thumbnail).size == (64, 32)
    gone = image_ref(_image("k2", blob=BlobRef(str(tmp_path / "gone.blob"), 0, 10)))[1]
    assert with_thumbnail(_rejection(spilled), [gone], SPEC).thumbnail is None


def _written(tmp_path, rejected: dict, images: list, spec=SPEC) -> dict:
    out = tmp_path / "out.pkl"

    def save(items):
        out.write_bytes(pickle.dumps(list(items)))

    with local_test_pipeline() as p:
        pcolls = {stage: p | f"Create{stage}" >> beam.Create(rows) for stage, rows in rejected.items()}
        imgs = p | "CreateImages" >> beam.Create(images)
        sources = thumbnail_sources(pcolls, imgs, spec)
        sources | beam.Flatten() | beam.combiners.ToList() | beam.Map(save)
    return {(r.key, r.reason): r for r in pickle.loads(out.read_bytes())}


def test_only_pairs_dropped_after_download_get_a_thumbnail(tmp_path):
    """A pre-download rejection whose key has a downloaded image (a page crawled twice, say) gets
    none; every post-download stage's rejection gets its own; nothing is lost or added."""
    a, b, c = (_image(k, _encoded((80, 60))) for k in ("a", "b", "c"))
    rejected = {
        "DedupeUrls": [Rejection.of(a.pair, DropReason.DEDUPE_URL, "duplicate of x")],
        "FetchImages": [Rejection.of(_image("d").pair, DropReason.FETCH_TIMEOUT)],
        "ImageRules": [_rejection(b, DropReason.IMAGE_TOO_SMALL)],
        "ClipThreshold": [_rejection(c)],
    }
    out = _written(tmp_path, rejected, [a, b, c])
    assert len(out) == 4
    assert out[("a", "dedupe.url")].thumbnail is None and out[("d", "fetch.timeout")].thumbnail is None
    assert _decoded(out[("b", "image.too_small")].thumbnail).size == (80, 60)
    assert _decoded(out[("c", "clip.below_threshold")].thumbnail).size == (80, 60)
    assert {"ImageRules", "DedupeImages", "DedupeNear", "ClipThreshold"} <= POST_DOWNLOAD_STAGES
    assert not {"FetchImages", "ResizeImages", "DedupeUrls", "ApplyBlocklists"} & POST_DOWNLOAD_STAGES


def test_thumbnails_off_passes_the_rejections_through(tmp_path):
    b = _image("b", _encoded((80, 60)))
    out = _written(tmp_path, {"ImageRules": [_rejection(b, DropReason.IMAGE_TOO_SMALL)]}, [b], spec=None)
    assert [r.thumbnail for r in out.values()] == [None]
