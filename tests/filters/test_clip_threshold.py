"""filters.clip_threshold: absolute and keep_fraction thresholds (approximate quantiles), with metrics."""

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from filters.clip_threshold import ClipThreshold, ComputeClipThreshold, threshold_from_quantiles
from pipeline.records import AltPair, ResizedImage, ScoredImage
from pipeline.specs import threshold_spec
from tests.conftest import counter, local_test_pipeline
from tests.default_specs import spec_with


def _scored(i, score):
    pair = AltPair(key=f"{i:04x}", page_url="http://s/p", image_url=f"http://s/{i}.jpg", caption="a b c")
    return ScoredImage(image=ResizedImage(pair=pair, data=b"", ext="jpg", width=1, height=1, original_width=1,
                                          original_height=1, sha256=""), clip_score=score)


@pytest.mark.parametrize("fraction, expected", [(1.0, 0.0), (0.5, 5.0), (0.3, 7.0), (0.01, 10.0)])
def test_threshold_from_quantiles(fraction, expected):
    assert threshold_from_quantiles([float(x) for x in range(11)], fraction) == expected
    assert threshold_from_quantiles([], 0.5) is None


def _run(spec, scores):
    records = [_scored(i, s) for i, s in enumerate(scores)]
    p = local_test_pipeline()
    scored = p | beam.Create(records)
    threshold = (scored | "Scores" >> beam.FlatMap(lambda s: [s.clip_score] if s.clip_score is not None else [])
                 | ComputeClipThreshold(spec))
    kept, rejected = scored | ClipThreshold(threshold)
    return p, threshold, kept, rejected


def test_keep_fraction_keeps_the_top_scores():
    scores = [i / 1000 for i in range(1000)]
    p, threshold, kept, rejected = _run(spec_with(threshold_spec, min_score=0.99, keep_fraction=0.3), scores)
    # 1000 quantiles of 1000 scores: the threshold lands within one rank of the 70th percentile
    assert_that(threshold | "Near" >> beam.Map(lambda t: abs(t - 0.7) <= 0.0015), equal_to([True]), label="thr")
    assert_that(kept | "N" >> beam.combiners.Count.Globally() | "About" >> beam.Map(lambda n: 299 <= n <= 301),
                equal_to([True]), label="kept")
    result = p.run()
    result.wait_until_finish()
    assert 699 <= counter(result, "clip.below_threshold") <= 701


def test_absolute_threshold_and_missing_scores():
    p, threshold, kept, rejected = _run(spec_with(threshold_spec, min_score=0.3), [0.9, 0.3, 0.1, None])
    assert_that(threshold, equal_to([0.3]), label="threshold")
    assert_that(kept | "K" >> beam.Map(lambda s: s.clip_score), equal_to([0.9, 0.3]), label="kept")
    assert_that(rejected | "R" >> beam.Map(lambda r: (r.reason, r.detail)),
                equal_to([("clip.below_threshold", "0.1000 < 0.3"), ("clip.score_error", "no score")]), label="rej")
    result = p.run()
    result.wait_until_finish()
    assert counter(result, "clip.score_error") == 1


def test_keep_fraction_with_nothing_scored_drops_only_missing_scores():
    p, threshold, kept, rejected = _run(spec_with(threshold_spec, keep_fraction=0.5), [None])
    assert_that(threshold, equal_to([None]), label="threshold")
    assert_that(rejected | "R" >> beam.Map(lambda r: r.reason), equal_to(["clip.score_error"]), label="rej")
    p.run().wait_until_finish()
