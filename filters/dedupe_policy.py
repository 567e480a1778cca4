"""Which member of a duplicate group survives: the survivor policies of DedupeNear and SemanticDedupe.

Input: stage records (``ResizedImage`` or ``ScoredImage``). Output: a rank tuple per
record; the smallest rank in a group survives. No drop reasons here: the dedupe
stages (transforms/dedupe.py, transforms/semantic_dedupe.py) drop and say why;
build.py hands them a policy from this module (transforms never import filters).

Policies (``dedupe.near_policy``):
- ``largest``: the most original pixels (the download the others were made from).
- ``first_by_key``: the smallest sample key (arbitrary but stable; cheapest to reason about).
- ``best_caption``: the most distinct words, then the longest caption.
- ``best_clip_score``: the highest CLIP score; needs scores, so DedupeNear runs after ScoreClip.
Every policy ends with the same tie-break (image URL, page URL, position, key), so a
group's survivor is the same on every run and every runner.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from pipeline.records import ScoredImage

# dedupe.near_policy's values (pipeline/config.py validates the knob against them).
SURVIVOR_POLICIES = ("largest", "first_by_key", "best_caption", "best_clip_score")
_WORD = re.compile(r"[^\W\d_]{2,}")


def caption_quality(caption: str) -> tuple[int, int]:
    """(distinct words of two or more letters, length): more is a better caption."""
    return len(set(_WORD.findall(caption.lower()))), len(caption.strip())


def _image(record):
    return record.image if isinstance(record, ScoredImage) else record


def _tie_break(record) -> tuple:
    pair = _image(record).pair
    return (pair.image_url, pair.page_url, pair.position, pair.key)


@dataclass(frozen=True)
class SurvivorPolicy:
    """Callable: record -> rank tuple (smaller survives)."""

    name: str  # dedupe.near_policy (pipeline/specs.py: survivor_policy)

    def __post_init__(self):
        if self.name not in SURVIVOR_POLICIES:
            raise ValueError(f"unknown survivor policy {self.name!r}; expected one of {SURVIVOR_POLICIES}")

    @property
    def needs_scores(self) -> bool:
        return self.name == "best_clip_score"

    def __call__(self, record) -> tuple:
        image = _image(record)
        if self.name == "first_by_key":
            return (image.pair.key,)
        if self.name == "largest":
            head = (-image.original_width * image.original_height, -image.width * image.height)
        elif self.name == "best_caption":
            words, length = caption_quality(image.pair.caption)
            head = (-words, -length)
        else:  # best_clip_score; unscored records lose to any score
            score = record.clip_score if isinstance(record, ScoredImage) else None
            head = (-(score if score is not None and not math.isnan(score) else -math.inf),)
        return head + _tie_break(record)


_TELL = re.compile(r"[^\W_]+")
# Filler and words for how a picture is made ("an illustration of", "a simple drawing of", ", digital
# art"): two captions of one picture differ in those without naming a difference of the picture.
_COMMON = frozenset("a an the of for in on at to with and or by from is are this that image photo picture "
                    "screenshot example photograph illustration drawing sketch painting digital art artwork "
                    "simple render rendering".split())


def distinguishing_words(caption_a: str, caption_b: str) -> tuple[frozenset, frozenset]:
    """(words only ``caption_a`` has, words only ``caption_b`` has), common filler left out."""
    a = {w for w in _TELL.findall(caption_a.lower()) if w not in _COMMON}
    b = {w for w in _TELL.findall(caption_b.lower()) if w not in _COMMON}
    return frozenset(a - b), frozenset(b - a)


def captions_tell_apart(caption_a: str, caption_b: str) -> bool:
    """Whether two near-duplicate images' captions name a difference: each has a word the other
    lacks ("... tool: no" / "... tool: yes", "“Waves” filter" / "“Jigsaw” filter"). A caption that
    only adds to the other ("Xfce Desktop" / "Xfce Desktop screen") or an empty one tells nothing.
    DedupeNear can veto an edge with it (bench/near_captions.py measures it on the corpus)."""
    only_a, only_b = distinguishing_words(caption_a, caption_b)
    return bool(only_a) and bool(only_b)
