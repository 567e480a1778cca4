"""filters.safety: the safety filter's reason codes and thresholds, through ApplyRules."""

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from filters.base import ApplyRules
from filters.safety import SafetyRule, reason_for, safety_rules
from pipeline.records import AltPair, DropReason, ResizedImage, ScoredImage
from tests.conftest import local_test_pipeline


def _scored(key, **tags):
    pair = AltPair(key=key, page_url="http://s/p", image_url=f"http://s/{key}.jpg", caption="a red circle")
    image = ResizedImage(pair=pair, data=b"x", ext="jpg", width=8, height=8, original_width=8, original_height=8,
                         sha256=key)
    return ScoredImage(image=image, clip_score=0.5, safety=tuple(tags.items()))


THRESHOLDS = {"nsfw": 0.8, "watermark": 0.9, "screenshot": 0.9, "gore": 0.5}


def test_reason_codes():
    assert reason_for("nsfw") is DropReason.SAFETY_NSFW
    assert reason_for("watermark") is DropReason.SAFETY_WATERMARK
    assert reason_for("screenshot") is DropReason.SAFETY_SCREENSHOT
    assert reason_for("gore") is DropReason.SAFETY_CUSTOM


def test_rule_thresholds_are_inclusive_and_ordered():
    rule = SafetyRule(tuple(THRESHOLDS.items()))
    assert rule.check(_scored("a", nsfw=0.79, watermark=0.2)) is None
    assert rule.check(_scored("b", nsfw=0.8))[0] is DropReason.SAFETY_NSFW
    reason, detail = rule.check(_scored("c", nsfw=0.95, watermark=0.95))
    assert reason is DropReason.SAFETY_NSFW and detail == "nsfw 0.9500 >= 0.8"  # first tag in order wins
    assert rule.check(_scored("d", gore=0.6)) == (DropReason.SAFETY_CUSTOM, "gore 0.6000 >= 0.5")
    assert rule.check(_scored("e")) is None  # untagged (no embedding): kept


def test_tags_without_threshold_are_columns_only():
    assert safety_rules({"nsfw": None, "watermark": 0.5}) == [SafetyRule((("watermark", 0.5),))]


def test_safety_filter_in_a_pipeline():
    records = [_scored("keep", nsfw=0.1, watermark=0.1, screenshot=0.1), _scored("n", nsfw=0.99),
               _scored("w", watermark=0.95), _scored("s", screenshot=0.91), _scored("g", gore=0.7)]
    p = local_test_pipeline()
    kept, rejected = p | beam.Create(records) | ApplyRules(safety_rules(THRESHOLDS))
    assert_that(kept | "K" >> beam.Map(lambda s: s.image.pair.key), equal_to(["keep"]), label="Kept")
    assert_that(rejected | "R" >> beam.Map(lambda r: (r.key, r.stage, r.reason)), equal_to([
        ("n", "safety", "safety.nsfw"), ("w", "safety", "safety.watermark"),
        ("s", "safety", "safety.screenshot"), ("g", "safety", "safety.custom")]), label="Rejected")
    p.run().wait_until_finish()
