"""ClipThreshold: drop pairs whose CLIP image-text similarity is below a threshold.

Input: ``ScoredImage``. Output: ``(kept, rejected)`` with ``clip.below_threshold``
(detail: the score and the threshold) and ``clip.score_error`` (no score although
scoring ran).

The threshold is either absolute (``score.min_score``, LAION's 0.28 for ViT-B-32)
or relative: ``score.keep_fraction`` F keeps the top F of the scores, as DataComp's
CLIP-score filters do. The relative threshold is the (1 - F) quantile of the scores
entering this stage, from Beam's ``ApproximateQuantiles`` (1000 quantiles; exact
on small inputs, within a fraction of a percent of rank otherwise), so no global
sort. ``ComputeClipThreshold`` yields the one number used, which build.py also
writes to stats.json (``thresholds.clip_min_score``).

Keys at 100M pairs: ``ApproximateQuantiles.Globally`` is a global combine, lifted: each worker
folds its scores into a bounded summary (a few thousand floats, whatever the count) and one
worker merges one summary per bundle. The threshold reaches ClipThreshold as a one-float side
input. No key holds the scores themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import apache_beam as beam

from filters.base import Verdict, route
from pipeline.records import DropReason, ScoredImage

QUANTILES = 1000  # threshold resolution for keep_fraction: 0.1 % of rank


@dataclass(frozen=True)
class ClipThresholdRule:
    min_score: float
    name: str = "clip_threshold"

    def check(self, scored: ScoredImage) -> Verdict:
        if scored.clip_score is None:
            return DropReason.CLIP_SCORE_ERROR, "no score"
        if scored.clip_score < self.min_score:
            return DropReason.CLIP_BELOW_THRESHOLD, f"{scored.clip_score:.4f} < {self.min_score}"
        return None


@dataclass(frozen=True)
class ThresholdSpec:
    """pipeline/specs.py: ``threshold_spec``, from ``score.min_score`` / ``score.keep_fraction``."""

    min_score: float
    keep_fraction: float  # > 0: keep the top fraction instead of min_score


def threshold_from_quantiles(quantiles: Sequence[float], keep_fraction: float) -> Optional[float]:
    """The score at rank (1 - keep_fraction) of ``quantiles`` (min .. max, evenly spaced ranks)."""
    if not quantiles:
        return None
    last = len(quantiles) - 1
    index = min(last, max(0, round((1.0 - keep_fraction) * last)))
    return float(quantiles[index])


class ComputeClipThreshold(beam.PTransform):
    """CLIP scores (floats) -> a one-element PCollection: the threshold to apply (None: nothing scored)."""

    def __init__(self, spec: ThresholdSpec):
        super().__init__()
        self.spec = spec

    def expand(self, scores):
        if self.spec.keep_fraction <= 0:
            return scores.pipeline | "AbsoluteThreshold" >> beam.Create([self.spec.min_score])
        return (
            scores
            | "ScoreQuantiles" >> beam.ApproximateQuantiles.Globally(QUANTILES + 1)
            | "ThresholdForFraction" >> beam.Map(threshold_from_quantiles, self.spec.keep_fraction)
        )


class _ThresholdFn(beam.DoFn):
    def process(self, scored: ScoredImage, threshold: Optional[float]):
        # None: nothing was scored, so no quantile exists; only a missing score is dropped.
        yield route(scored, ClipThresholdRule(float("-inf") if threshold is None else threshold).check(scored))


class ClipThreshold(beam.PTransform):
    """ScoredImage -> (kept, rejected) under the threshold from ``ComputeClipThreshold``."""

    def __init__(self, threshold):
        super().__init__()
        self.threshold = threshold  # one-element PCollection

    def expand(self, scored):
        out = scored | "Check" >> beam.ParDo(
            _ThresholdFn(), threshold=beam.pvalue.AsSingleton(self.threshold)).with_outputs("rejected", main="kept")
        return out.kept, out.rejected
