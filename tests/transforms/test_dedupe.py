import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from pipeline.specs import lsh_spec
from tests.default_specs import spec_with
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
    kept, rejected = p | beam.Create(records) | DedupeNear(spec_with(lsh_spec), SurvivorPolicy("largest"), cc_rounds)
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
        kept, rejected = p | beam.Create(records) | DedupeNear(spec_with(lsh_spec), SurvivorPolicy("best_clip_score"),
                                                               cc_rounds=1)
        assert_that(kept | "K" >> beam.Map(lambda r: (r.image.pair.key, r.clip_score)), equal_to([("a2", 0.9)]),
                    label="kept")
        assert_that(rejected | "R" >> beam.Map(lambda r: r.key), equal_to(["a1", "a3"]), label="rejected")


def test_prefix_bits_grow_with_the_input_up_to_64_groups():
    assert [prefix_bits(n) for n in (0, 1, 2000, 4096, 4097, 10_000, 100_000, 10**6, 10**9)] == [
        0, 0, 0, 0, 1, 2, 5, 6, 6]


# -- exact dedupe without a hot key: a combine for the survivor, a salted join for the records -------

import random  # noqa: E402
from collections import defaultdict  # noqa: E402

from apache_beam.metrics import Metrics  # noqa: E402

from transforms.dedupe import image_order  # noqa: E402

_SURVIVOR_OF_MEMBERS = dedupe_module._survivor_of_members


def _reference(records, key_fn, order, reason):
    """The straightforward implementation: group by key, sort, first survives (split_group)."""
    groups = defaultdict(list)
    for record in records:
        groups[key_fn(record)].append(record)
    kept, rejected = [], []
    for group in groups.values():
        survivor, rejections = split_group(group, order, reason)
        kept.append(survivor)
        rejected.extend(rejections)
    return kept, rejected


def _mixed_pairs(n=1500, seed=7):
    """Pairs with few, some and many copies of a URL (case and fragment variants), repeated
    captions, and one pair present twice (the same record: one of the two survives)."""
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        if i % 5 == 0:
            url = rng.choice(["http://cdn/logo.png", "http://CDN/logo.png#a"])  # one hot URL
        else:
            url = f"http://s/img{rng.randrange(n // 3)}.jpg" + rng.choice(["", "#f"])
        page = f"http://s/p{rng.randrange(n // 4)}"
        pairs.append(AltPair(key=f"k{i:05d}", page_url=page, image_url=url,
                             caption=rng.choice(["a red star", "a blue dot", f"caption {i % 7}"]),
                             position=rng.randrange(6)))
    return pairs + [pairs[3]]


@pytest.mark.parametrize("per_key", [10_000, 40])
@pytest.mark.parametrize("stage", ["urls", "url_captions", "images"])
def test_exact_dedupe_matches_group_and_sort(stage, per_key):
    """Kept records and rejections (reason, "duplicate of <key>") equal those of group + sort,
    with no salting (per_key 10,000) and with the hot URL and larger groups salted (40)."""
    pairs = _mixed_pairs()
    if stage == "images":
        # a third on one placeholder's bytes, the rest in pairs or alone
        records = [_img(pair, f"sha{0 if int(pair.key[1:]) % 3 == 0 else int(pair.key[1:]) % 700}") for pair in pairs]
        transform, key_fn, order, reason = (DedupeImages(per_key), dedupe_module._sha_key, image_order,
                                            DropReason.DEDUPE_IMAGE_EXACT)
    elif stage == "urls":
        records = pairs
        transform, key_fn, order, reason = DedupeUrls(per_key), dedupe_module._url_key, url_order, DropReason.DEDUPE_URL
    else:
        records = pairs
        transform, key_fn, order, reason = (DedupeUrlCaptions(per_key), dedupe_module._url_caption_key, url_order,
                                            DropReason.DEDUPE_URL_CAPTION)
    want_kept, want_rejected = _reference(records, key_fn, order, reason)
    assert 100 < len(want_rejected) < len(records) - 100
    p = local_test_pipeline()
    kept, rejected = p | beam.Create(records) | transform
    assert_that(kept, equal_to(want_kept), label="kept")
    assert_that(rejected, equal_to(want_rejected), label="rejected")
    result = p.run()
    result.wait_until_finish()
    assert counter(result, reason.value) == len(want_rejected)


def _observed_survivor_of_members(group, stats, samples, salt):
    """_survivor_of_members, recording how many members each salted group of the join held."""
    Metrics.distribution("test", "members_per_group").update(len(samples))
    if group == "http://cdn/logo.png":
        Metrics.counter("test", "hot_key_groups").inc()
    return _SURVIVOR_OF_MEMBERS(group, stats, samples, salt)


def test_dedupe_urls_spreads_a_hot_url_over_many_keys(monkeypatch):
    """25,000 pairs of one logo URL with per_key 1,000: the survivor join holds ~1,000 members
    per key, 25 keys for the logo, and the output is still the one survivor and 24,999
    duplicates. Without the salting the logo is one group of 25,000 (the guard this test checks)."""
    monkeypatch.setattr(dedupe_module, "_survivor_of_members", _observed_survivor_of_members)
    pairs = [AltPair(key=f"k{i:05d}", page_url=f"http://s/p{(i * 7919) % 25_000:05d}",
                     image_url="http://cdn/logo.png" + ("#x" if i % 2 else ""), caption="logo", position=i % 3)
             for i in range(25_000)]
    pairs += [_pair("http://s/q", 0, "http://s/other.jpg", "other")]
    survivor = min(pairs[:-1], key=url_order)
    p = local_test_pipeline()
    kept, rejected = p | beam.Create(pairs) | DedupeUrls(per_key=1000)
    assert_that(kept | "K" >> beam.Map(lambda r: r.key), equal_to([survivor.key, "other"]), label="kept")
    assert_that(rejected | "Details" >> beam.Map(lambda r: r.detail) | beam.Distinct(),
                equal_to([f"duplicate of {survivor.key}"]), label="details")
    result = p.run()
    result.wait_until_finish()
    assert counter(result, "dedupe.url") == 24_999
    metrics = result.metrics().query()
    hot_groups = sum(c.committed for c in metrics["counters"] if c.key.metric.name == "hot_key_groups")
    sizes = [d.committed for d in metrics["distributions"] if d.key.metric.name == "members_per_group"][0]
    assert hot_groups == 25
    assert sizes.sum == 25_001
    assert sizes.max <= 1_300, f"largest group of the join: {sizes.max} members"


# -- the caption veto: near-duplicate images whose captions tell them apart stay apart ------------------

import dataclasses  # noqa: E402

from filters.dedupe_policy import captions_tell_apart  # noqa: E402

NO, YES = "Installer screen: answer no", "Installer screen: answer yes"
OTHER, FAR = 0x0123_4567_89AB_CDEF, ~BASE & (2**64 - 1)


def _captioned(key, phash, caption, pixels=100):
    image = _hashed(key, phash, pixels=pixels)
    return dataclasses.replace(image, pair=dataclasses.replace(image.pair, caption=caption))


@pytest.mark.parametrize("veto", [True, False])
def test_caption_veto_keeps_near_duplicates_whose_captions_tell_apart(veto):
    """Two screens 2 bits apart captioned "... answer no" / "... answer yes" are two pictures with
    the veto (one vetoed edge, counted) and one group without it; "Xfce Desktop" / "Xfce Desktop
    screen" (the second only adds a word) merge either way; so do identical signatures (pHash and
    colour), whatever their captions: the veto is for LSH edges only."""
    records = [_captioned("n1", BASE, NO, pixels=300), _captioned("n2", BASE ^ 0b11, YES),
               _captioned("x1", OTHER, "Xfce Desktop", pixels=300), _captioned("x2", OTHER ^ 0b1100, "Xfce Desktop screen"),
               _captioned("s1", FAR, NO, pixels=300), _captioned("s2", FAR, YES)]
    p = local_test_pipeline()
    kept, rejected = p | beam.Create(records) | DedupeNear(
        spec_with(lsh_spec), SurvivorPolicy("largest"), cc_rounds=2, caption_veto=captions_tell_apart if veto else None)
    want_kept = ["n1", "n2", "x1", "s1"] if veto else ["n1", "x1", "s1"]
    want_rejected = [("x2", "duplicate of x1 (group of 2)"), ("s2", "duplicate of s1 (group of 2)")]
    if not veto:
        want_rejected.append(("n2", "duplicate of n1 (group of 2)"))
    assert_that(kept | "K" >> beam.Map(lambda r: r.pair.key), equal_to(want_kept), label="kept")
    assert_that(rejected | "R" >> beam.Map(lambda r: (r.key, r.detail)), equal_to(want_rejected), label="rejected")
    result = p.run()
    result.wait_until_finish()
    assert counter(result, "near_caption_vetoed_edges") == (1 if veto else 0)


@pytest.mark.parametrize("salted", [False, True])
def test_caption_veto_on_a_hot_endpoint(salted, monkeypatch):
    """A hub near 40 others (1 bit from each; they are 2 bits from each other): the 20 captioned
    like the hub ("... yes") join its group, the 20 "... no" form their own, and the 21 x 20 yes/no
    edges are vetoed. Salted: every endpoint's edges spread over as many keys as it has edges (the
    path of a blank image near 100k others): the same groups and the same count."""
    if salted:
        monkeypatch.setattr(hot_join, "salts_for", lambda count, _per_key: max(1, count))
    records = [_captioned("hub", BASE, YES, pixels=1000)]
    records += [_captioned(f"e{i:02d}", BASE ^ (1 << i), NO if i % 2 else YES, pixels=900 - i) for i in range(40)]
    p = local_test_pipeline()
    kept, rejected = p | beam.Create(records) | DedupeNear(
        spec_with(lsh_spec), SurvivorPolicy("largest"), cc_rounds=2, caption_veto=captions_tell_apart)
    assert_that(kept | "K" >> beam.Map(lambda r: r.pair.key), equal_to(["hub", "e01"]), label="kept")
    assert_that(rejected | "R" >> beam.Map(lambda r: r.detail) | beam.Distinct(),
                equal_to(["duplicate of hub (group of 21)", "duplicate of e01 (group of 20)"]), label="details")
    result = p.run()
    result.wait_until_finish()
    assert counter(result, "dedupe.image_near") == 39
    assert counter(result, "near_caption_vetoed_edges") == 21 * 20
