"""filters.dedupe_policy: who survives a duplicate group, for every policy (table-driven)."""

import math

import pytest

from filters.dedupe_policy import SurvivorPolicy, caption_quality
from pipeline.records import AltPair, ResizedImage, ScoredImage


def _rec(key, url, caption="a red star", size=(100, 100), score=None):
    pair = AltPair(key=key, page_url="http://s/p", image_url=url, caption=caption)
    image = ResizedImage(pair=pair, data=b"", ext="jpg", width=64, height=64, original_width=size[0],
                         original_height=size[1], sha256=key)
    return ScoredImage(image=image, clip_score=score) if score is not None else image


GROUP = [
    _rec("k3", "http://s/b.jpg", "a red star on a blue background, digital art", (200, 100), 0.31),
    _rec("k1", "http://s/c.jpg", "red star", (300, 300), 0.29),
    _rec("k2", "http://s/a.jpg", "a photo of a red star", (300, 300), float("nan")),
    _rec("k4", "http://s/d.jpg", "red star red star red star", (50, 50), 0.45),
]


@pytest.mark.parametrize("policy, survivor", [
    ("largest", "k2"),  # k1 and k2 tie on pixels: the smaller image URL wins
    ("first_by_key", "k1"),
    ("best_caption", "k3"),
    ("best_clip_score", "k4"),  # NaN and missing scores lose to any score
])
def test_survivor_of_each_policy(policy, survivor):
    rank = SurvivorPolicy(policy)
    assert min(GROUP, key=rank).image.pair.key == survivor
    assert sorted(GROUP, key=rank) == sorted(reversed(GROUP), key=rank)  # order-independent


def test_unscored_records_and_validation():
    rank = SurvivorPolicy("best_clip_score")
    assert rank.needs_scores and not SurvivorPolicy("largest").needs_scores
    unscored = _rec("k9", "http://s/z.jpg")
    assert rank(unscored)[0] == math.inf and rank(GROUP[0]) < rank(unscored)
    with pytest.raises(ValueError, match="unknown survivor policy"):
        SurvivorPolicy("random")


@pytest.mark.parametrize("caption, words", [("", 0), ("a b c", 0), ("Red star, red STAR!", 2), ("IMG 1234 x", 1)])
def test_caption_quality_counts_distinct_words(caption, words):
    assert caption_quality(caption)[0] == words


def test_captions_tell_apart_needs_a_difference_on_both_sides():
    from filters.dedupe_policy import captions_tell_apart

    assert captions_tell_apart("Use the automatic partitioning tool: no", "Use the automatic partitioning tool: yes")
    assert captions_tell_apart("Example for the “Waves” filter", "Jigsaw filter example")
    assert not captions_tell_apart("Xfce Desktop", "Xfce Desktop screen")
    assert not captions_tell_apart("", "Host details")
    assert not captions_tell_apart("Host details", "host DETAILS.")
