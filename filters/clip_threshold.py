"""ClipThreshold: drop pairs whose CLIP image-text similarity is below a threshold.

Input: ``ScoredImage``. Output: via ``ApplyRules``, kept images and rejections
with ``clip.below_threshold`` (detail: the score and the threshold) and
``clip.score_error`` (no score although scoring ran).
"""

from __future__ import annotations

from dataclasses import dataclass

from filters.base import Verdict
from pipeline.records import DropReason, ScoredImage


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
