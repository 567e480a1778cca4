"""ImageRules: drop images too small or too elongated to be useful for training.

Input: ``ResizedImage``. Output: via ``ApplyRules``, kept images and rejections
with ``image.too_small`` (shorter side of the *original* image below
``min_side``: icons, trackers) and ``image.bad_aspect`` (long/short side above
``max_aspect``: banners, rules, spacers).
"""

from __future__ import annotations

from dataclasses import dataclass

from filters.base import Verdict
from pipeline.records import DropReason, ResizedImage


@dataclass(frozen=True)
class ImageRulesSpec:
    """What ImageRules needs (pipeline/specs.py makes it from the ``image`` section)."""

    min_side: int  # the original's shorter side below this: image.too_small
    max_aspect: float  # long / short side above this: image.bad_aspect


def image_verdict(width: int, height: int, cfg: ImageRulesSpec) -> Verdict:
    short, long = min(width, height), max(width, height)
    if short < cfg.min_side:
        return DropReason.IMAGE_TOO_SMALL, f"{width}x{height} < {cfg.min_side}px"
    if long / max(short, 1) > cfg.max_aspect:
        return DropReason.IMAGE_BAD_ASPECT, f"{width}x{height} aspect {long / short:.2f} > {cfg.max_aspect}"
    return None


@dataclass(frozen=True)
class ImageSizeRule:
    cfg: ImageRulesSpec
    name: str = "image_size"

    def check(self, image: ResizedImage) -> Verdict:
        return image_verdict(image.original_width, image.original_height, self.cfg)


def image_rules(cfg: ImageRulesSpec) -> list:
    return [ImageSizeRule(cfg)]
