"""filters.base: first_failure order semantics, and ApplyRules in a TestPipeline."""

from dataclasses import dataclass

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from filters.base import ApplyRules, first_failure
from filters.caption_rules import caption_rules
from filters.image_rules import ImageRulesSpec, image_rules
from pipeline.config import CaptionConfig, CurateConfig
from pipeline.specs import caption_spec
from pipeline.records import AltPair, DropReason, ResizedImage
from pipeline.specs import image_spec
from tests.conftest import counter as _counter, local_test_pipeline




@dataclass(frozen=True)
class _Fixed:
    """A rule with a fixed verdict that logs its calls (order checks)."""

    name: str
    verdict: object = None

    def check(self, record):
        record.append(self.name)
        return self.verdict


def test_first_failure_returns_the_first_failing_rule_and_stops():
    too_small = (DropReason.IMAGE_TOO_SMALL, "first")
    aspect = (DropReason.IMAGE_BAD_ASPECT, "second")
    calls = []
    assert first_failure([_Fixed("a"), _Fixed("b", too_small), _Fixed("c", aspect)], calls) == too_small
    assert calls == ["a", "b"]  # later rules are not consulted
    calls = []
    assert first_failure([_Fixed("c", aspect), _Fixed("b", too_small)], calls) == aspect  # order decides
    assert calls == ["c"]
    calls = []
    assert first_failure([_Fixed("a"), _Fixed("b")], calls) is None and calls == ["a", "b"]
    assert first_failure([], []) is None


def _pair(key: str, caption: str) -> AltPair:
    return AltPair(key=key, page_url="http://s/p.html", image_url=f"http://s/{key}.jpg", caption=caption)


def _image(key: str, width: int, height: int) -> ResizedImage:
    return ResizedImage(pair=_pair(key, "a red circle on blue"), data=b"x", ext="jpg", width=64, height=64,
                        original_width=width, original_height=height, sha256=key)


CAPTIONS = {"ok1": "a red circle on blue", "ok2": "two green squares side by side", "empty": "",
            "file": "IMG_0042.JPG", "place": "logo", "short": "red", "short2": "a dog", "url": "www.example.org/x"}
CAPTION_EXPECTED = {"empty": "caption.empty", "file": "caption.filename", "place": "caption.placeholder",
                    "short": "caption.too_short", "short2": "caption.too_short", "url": "caption.url_like"}
IMAGES = {"big": (300, 200), "square": (32, 32), "icon": (16, 16), "thin": (31, 400), "banner": (728, 90)}
IMAGE_EXPECTED = {"icon": "image.too_small", "thin": "image.too_small", "banner": "image.bad_aspect"}


def test_apply_rules_pipeline_routes_and_counts_per_reason():
    p = local_test_pipeline()
    pairs = p | "Pairs" >> beam.Create([_pair(k, c) for k, c in CAPTIONS.items()])
    kept_pairs, rejected_pairs = pairs | "CaptionRules" >> ApplyRules(caption_rules(caption_spec(CurateConfig())))
    images = p | "Images" >> beam.Create([_image(k, w, h) for k, (w, h) in IMAGES.items()])
    kept_images, rejected_images = images | "ImageRules" >> ApplyRules(image_rules(image_spec(CurateConfig())))

    assert_that(kept_pairs | "KeptPairKeys" >> beam.Map(lambda r: r.key), equal_to(["ok1", "ok2"]),
                label="kept_pairs")
    assert_that(rejected_pairs | "RejectedPairs" >> beam.Map(lambda r: (r.key, r.stage, r.reason, r.caption)),
                equal_to([(k, "caption", v, CAPTIONS[k]) for k, v in CAPTION_EXPECTED.items()]),
                label="rejected_pairs")
    assert_that(kept_images | "KeptImageKeys" >> beam.Map(lambda r: r.pair.key), equal_to(["big", "square"]),
                label="kept_images")
    assert_that(rejected_images | "RejectedImages" >> beam.Map(lambda r: (r.key, r.stage, r.reason)),
                equal_to([(k, "image", v) for k, v in IMAGE_EXPECTED.items()]), label="rejected_images")
    result = p.run()
    result.wait_until_finish()
    expected_counts = {}
    for reason in list(CAPTION_EXPECTED.values()) + list(IMAGE_EXPECTED.values()):
        expected_counts[reason] = expected_counts.get(reason, 0) + 1
    for reason, n in expected_counts.items():
        assert _counter(result, reason) == n, reason
    assert _counter(result, "caption.too_long") == 0


def test_apply_rules_pipeline_first_rule_names_the_reason():
    both_fail = [_image("tiny_banner", 20, 200)]  # too small AND too elongated
    size_rules = image_rules(ImageRulesSpec(min_side=32, max_aspect=3.0))
    p = local_test_pipeline()
    images = p | beam.Create(both_fail)
    _, small_first = images | "SmallFirst" >> ApplyRules(size_rules + [_AspectOnly()])
    _, aspect_first = images | "AspectFirst" >> ApplyRules([_AspectOnly()] + size_rules)
    assert_that(small_first | "SmallFirstReasons" >> beam.Map(lambda r: r.reason), equal_to(["image.too_small"]),
                label="small_first")
    assert_that(aspect_first | "AspectFirstReasons" >> beam.Map(lambda r: (r.reason, r.detail)),
                equal_to([("image.bad_aspect", "aspect_only")]), label="aspect_first")
    result = p.run()
    result.wait_until_finish()
    assert _counter(result, "image.too_small") == 1 and _counter(result, "image.bad_aspect") == 1


@dataclass(frozen=True)
class _AspectOnly:
    name: str = "aspect_only"

    def check(self, image):
        w, h = image.original_width, image.original_height
        return (DropReason.IMAGE_BAD_ASPECT, self.name) if max(w, h) / min(w, h) > 3 else None
