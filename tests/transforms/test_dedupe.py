import apache_beam as beam
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
