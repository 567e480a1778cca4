import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import local_test_pipeline
from pipeline.records import AltPair, DropReason, ResizedImage
from transforms.dedupe import DedupeImages, DedupeUrls, split_group, url_order


def _pair(page, pos, url, key=None):
    return AltPair(key=key or f"{page}{pos}", page_url=page, image_url=url, caption="a b c d", position=pos)


def _img(pair, sha):
    return ResizedImage(pair=pair, data=b"x", ext="jpg", width=1, height=1, original_width=1,
                        original_height=1, sha256=sha)


def test_split_group_survivor_is_smallest_page_then_position():
    group = [_pair("http://s/b", 0, "u"), _pair("http://s/a", 5, "u"), _pair("http://s/a", 2, "u")]
    survivor, rejected = split_group(group, url_order, DropReason.DEDUPE_URL)
    assert (survivor.page_url, survivor.position) == ("http://s/a", 2)
    assert {r.key for r in rejected} == {"http://s/b0", "http://s/a5"}
    assert all(r.detail == f"duplicate of {survivor.key}" for r in rejected)


def test_dedupe_urls_pipeline_normalises_and_counts():
    pairs = [_pair("http://s/p1", 0, "http://S/img.jpg#x", "k1"), _pair("http://s/p2", 0, "http://s/img.jpg", "k2"),
             _pair("http://s/p1", 1, "http://s/other.jpg", "k3")]
    with local_test_pipeline() as p:
        kept, rejected = p | beam.Create(pairs) | DedupeUrls()
        assert_that(kept | "KeptKeys" >> beam.Map(lambda r: r.key), equal_to(["k1", "k3"]), label="kept")
        assert_that(rejected | "RejKeys" >> beam.Map(lambda r: (r.key, r.reason)),
                    equal_to([("k2", "dedupe.url")]), label="rejected")


def test_dedupe_images_keeps_smallest_image_url_and_reports_metric():
    a = _img(_pair("http://s/p", 0, "http://s/dupB.jpg", "kb"), "sha1")
    b = _img(_pair("http://s/p", 1, "http://s/dupA.jpg", "ka"), "sha1")
    c = _img(_pair("http://s/p", 2, "http://s/c.jpg", "kc"), "sha2")
    p = local_test_pipeline()
    kept, rejected = p | beam.Create([a, b, c]) | DedupeImages()
    assert_that(kept | "KeptKeys" >> beam.Map(lambda r: r.pair.key), equal_to(["ka", "kc"]), label="kept")
    assert_that(rejected | "RejKeys" >> beam.Map(lambda r: (r.key, r.reason)),
                equal_to([("kb", "dedupe.image_exact")]), label="rejected")
    result = p.run()
    result.wait_until_finish()
    counters = result.metrics().query()["counters"]
    assert sum(c.committed for c in counters if c.key.metric.name == "dedupe.image_exact") == 1


# -- (url, caption) and near-duplicate dedupe ------------------------------------------

from filters.dedupe_policy import SurvivorPolicy  # noqa: E402
from pipeline.records import ScoredImage  # noqa: E402
from tests.conftest import counter  # noqa: E402
import transforms.dedupe as dedupe_module  # noqa: E402
import transforms.hot_join as hot_join  # noqa: E402
from transforms.dedupe import DedupeNear, DedupeUrlCaptions, prefix_bits  # noqa: E402
from transforms.lsh import LshSpec  # noqa: E402

GREY, RED = "80" * 12, "f0" * 12
BASE = 0xF0F0_F0F0_F0F0_F0F0


def _hashed(key, phash, colour=GREY, pixels=100, score=None):
    pair = _pair("http://s/p", 0, f"http://s/{key}.jpg", key)
    image = ResizedImage(pair=pair, data=b"x", ext="jpg", width=8, height=8, original_width=pixels,
                         original_height=pixels, sha256=key, phash=f"{phash:016x}" if phash is not None else "",
                         colour_sig=colour)
    return ScoredImage(image=image, clip_score=score) if score is not None else image


def test_dedupe_url_captions_keeps_one_pair_per_caption():
    pairs = [AltPair("k1", "http://s/a", "http://s/i.jpg", "a red star"),
             AltPair("k2", "http://s/b", "http://S/i.jpg#x", "a red star"),
             AltPair("k3", "http://s/b", "http://s/i.jpg", "another caption here", position=1)]
    p = local_test_pipeline()
    kept, rejected = p | beam.Create(pairs) | DedupeUrlCaptions()
    assert_that(kept | "K" >> beam.Map(lambda r: r.key), equal_to(["k1", "k3"]), label="kept")
    assert_that(rejected | "R" >> beam.Map(lambda r: (r.key, r.reason, r.detail)),
                equal_to([("k2", "dedupe.url_caption", "duplicate of k1")]), label="rejected")
    result = p.run()
    result.wait_until_finish()
    assert counter(result, "dedupe.url_caption") == 1


@pytest.mark.parametrize("bits, cc_rounds, salted", [(0, 8, False), (6, 1, True)])
def test_dedupe_near_groups_transitively_and_keeps_the_policy_survivor(bits, cc_rounds, salted, monkeypatch):
    """The same groups whatever the band-prefix cut (one group per table, or 64), the component
    rounds (8, or 1 and the finisher) and the salting (every key with values spread over as
    many salts as it has values: the path a giant group takes)."""
    monkeypatch.setattr(dedupe_module, "prefix_bits", lambda _count: bits)
    if salted:
        monkeypatch.setattr(hot_join, "salts_for", lambda count, _per_key: max(1, count))
    records = [
        _hashed("a1", BASE, pixels=100), _hashed("a2", BASE ^ 0b11, pixels=300),  # 2 bits from a1
        _hashed("a3", BASE ^ (0b1111 << 40), pixels=50),  # 4 from a1
        _hashed("a4", BASE ^ (0b1111 << 40) ^ (0b1111 << 8), pixels=10),  # 8 from a3, 12 from a1: via a3
        _hashed("a5", BASE, pixels=100),  # identical signature to a1
        _hashed("b1", 0x0123_4567_89AB_CDEF),  # far away
        _hashed("c1", BASE, colour=RED),  # same hash, other colours: another picture
        _hashed("d1", None),  # not hashed: passes
    ]
    p = local_test_pipeline()
    kept, rejected = p | beam.Create(records) | DedupeNear(LshSpec(), SurvivorPolicy("largest"), cc_rounds)
    assert_that(kept | "K" >> beam.Map(lambda r: r.pair.key), equal_to(["a2", "b1", "c1", "d1"]), label="kept")
    assert_that(rejected | "R" >> beam.Map(lambda r: (r.key, r.reason, r.detail)),
                equal_to([(k, "dedupe.image_near", "duplicate of a2 (group of 5)") for k in ("a1", "a3", "a4", "a5")]),
                label="rejected")
    result = p.run()
    result.wait_until_finish()
    assert counter(result, "dedupe.image_near") == 4


def test_dedupe_near_best_clip_score_on_scored_images():
    records = [_hashed("a1", BASE, score=0.2), _hashed("a2", BASE ^ 0b11, score=0.9), _hashed("a3", BASE, score=0.5)]
    with local_test_pipeline() as p:
        kept, rejected = p | beam.Create(records) | DedupeNear(LshSpec(), SurvivorPolicy("best_clip_score"), cc_rounds=1)
        assert_that(kept | "K" >> beam.Map(lambda r: (r.image.pair.key, r.clip_score)), equal_to([("a2", 0.9)]),
                    label="kept")
        assert_that(rejected | "R" >> beam.Map(lambda r: r.key), equal_to(["a1", "a3"]), label="rejected")


def test_prefix_bits_grow_with_the_input_up_to_64_groups():
    assert [prefix_bits(n) for n in (0, 1, 2000, 4096, 4097, 10_000, 100_000, 10**6, 10**9)] == [
        0, 0, 0, 0, 1, 2, 5, 6, 6]
