"""SafetyFilter's rule: drop images whose safety tag score reaches the tag's threshold.

A tag whose threshold is None (``threshold: null``, ``safety.thresholds: [tag=off]``)
is a column only.

Input: ``ScoredImage`` with ``safety`` set by TagSafety (transforms/safety_tags.py).
Output (through ApplyRules): ``(kept, rejected)``. Drop reasons: ``safety.nsfw``,
``safety.watermark``, ``safety.screenshot`` for those tag names, ``safety.custom``
for any other tag (the detail names the tag, its score and the threshold). Tags are
checked in the order given; a record without tags (no embedding) is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from filters.base import Verdict
from pipeline.records import DropReason, ScoredImage

TAG_REASONS = {
    "nsfw": DropReason.SAFETY_NSFW,
    "watermark": DropReason.SAFETY_WATERMARK,
    "screenshot": DropReason.SAFETY_SCREENSHOT,
}


def reason_for(tag: str) -> DropReason:
    return TAG_REASONS.get(tag, DropReason.SAFETY_CUSTOM)


@dataclass(frozen=True)
class SafetyRule:
    thresholds: tuple  # ((tag, threshold), ...)
    name: str = "safety"

    def check(self, scored: ScoredImage) -> Verdict:
        scores = dict(scored.safety)
        for tag, threshold in self.thresholds:
            score = scores.get(tag)
            if score is not None and score >= threshold:
                return reason_for(tag), f"{tag} {score:.4f} >= {threshold}"
        return None


def safety_rules(thresholds: dict) -> list:
    """The rule list for ApplyRules from {tag: threshold}."""
    return [SafetyRule(tuple((tag, thr) for tag, thr in thresholds.items() if thr is not None))]
