"""ResizeImages in a TestPipeline: resized records, rejections and counters."""

import hashlib
import io

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to
from PIL import Image

from pipeline.specs import resize_spec
from tests.default_specs import spec_with
from pipeline.metrics import Counter
from pipeline.records import AltPair, DropReason, FetchedImage
from tests.conftest import counter as _counter, local_test_pipeline
from transforms.resize import ResizeImages


def _jpeg(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 30, 30)).save(buf, format="JPEG")
    return buf.getvalue()


def _fetched(key: str, data: bytes) -> FetchedImage:
    pair = AltPair(key=key, page_url="http://s/p.html", image_url=f"http://s/{key}.jpg", caption="a b c d")
    return FetchedImage(pair=pair, data=data, final_url=pair.image_url, mime="image/jpeg")




def test_resize_images_pipeline():
    good = _jpeg(120, 80)
    huge = _jpeg(200, 200)  # over the max_pixels below: refused from the header
    inputs = [_fetched("good", good), _fetched("truncated", good[: len(good) // 3]),
              _fetched("empty", b""), _fetched("huge", huge)]
    spec = spec_with(resize_spec, image_size=64, mode="keep_ratio_largest", max_pixels=150 * 150)
    p = local_test_pipeline()
    resized, rejected = p | beam.Create(inputs) | ResizeImages(spec)
    assert_that(resized | "Resized" >> beam.Map(
        lambda r: (r.pair.key, r.ext, r.width, r.height, r.original_width, r.original_height, r.sha256,
                   r.data[:3])),
        equal_to([("good", "jpg", 64, 43, 120, 80, hashlib.sha256(good).hexdigest(), b"\xff\xd8\xff")]),
        label="resized")
    assert_that(rejected | "Rejected" >> beam.Map(lambda r: (r.key, r.stage, r.reason)),
                equal_to([("truncated", "image", "image.undecodable"), ("empty", "image", "image.undecodable"),
                          ("huge", "image", "image.too_many_pixels")]), label="rejected")
    result = p.run()
    result.wait_until_finish()
    assert _counter(result, Counter.IMAGES_RESIZED.value) == 1
    assert _counter(result, DropReason.IMAGE_UNDECODABLE.value) == 2
    assert _counter(result, DropReason.IMAGE_TOO_MANY_PIXELS.value) == 1


def test_a_bug_on_one_archived_image_is_its_internal_error(monkeypatch):
    """ResizeImages (the WARC path): an unexpected exception costs that image only."""
    import transforms.resize as resize_mod

    real = resize_mod.resize_fetched

    def buggy(fetched, spec, pool=None):
        if fetched.pair.key == "bug":
            raise ZeroDivisionError("planted")
        return real(fetched, spec, pool)

    monkeypatch.setattr(resize_mod, "resize_fetched", buggy)
    p = local_test_pipeline()
    resized, rejected = (p | beam.Create([_fetched("ok", _jpeg(120, 80)), _fetched("bug", _jpeg(120, 80))])
                         | ResizeImages(spec_with(resize_spec, image_size=64)))
    assert_that(resized | "Keys" >> beam.Map(lambda r: r.pair.key), equal_to(["ok"]), label="Kept")
    assert_that(rejected | "Why" >> beam.Map(lambda r: (r.key, r.reason, r.detail.split(":")[0])),
                equal_to([("bug", DropReason.IMAGE_INTERNAL.value, "ZeroDivisionError")]), label="Dropped")
    p.run().wait_until_finish()
