"""filters.blocklist: every list kind to its own reason code, before and after download, in a pipeline."""

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.util import assert_that, equal_to

from filters.blocklist import (ApplyBlocklists, BlockImageHashes, blocklist_stats, check_image, check_pair,
                               nearest_phash)
from filters.blocklist_lists import load_blocklists
from pipeline.records import AltPair, DropReason, ResizedImage
from pipeline.specs import blocklist_spec
from tests.conftest import counter, local_test_pipeline
from tests.default_specs import spec_with

SHA_BAD = "ab" * 32
PHASH_BAD = "f0f0f0f0f0f0f0f0"


@pytest.fixture
def spec(tmp_path):
    files = {
        "domains": "blocked.example\noptout.example\n",
        "url_prefixes": "https://cdn.example.com/takedown/\n",
        "urls": "https://cdn.example.com/one.jpg\n",
        "sha256": f"{SHA_BAD}\n",
        "phash": f"{PHASH_BAD}\n",
    }
    paths = {}
    for kind, text in files.items():
        (tmp_path / f"{kind}.txt").write_text(text)
        paths[kind] = [str(tmp_path / f"{kind}.txt")]
    return spec_with(blocklist_spec, **paths, phash_radius=4)


def _pair(key, image_url, page_url="https://site.example/page.html"):
    return AltPair(key=key, page_url=page_url, image_url=image_url, caption="a red circle on blue")


def _image(key, sha="00" * 32, phash="0000000000000000", final_url=None, image_url=None):
    url = image_url or f"https://ok.example/{key}.jpg"
    return ResizedImage(pair=_pair(key, url), data=b"x", ext="jpg", width=8, height=8, original_width=64,
                        original_height=64, sha256=sha, final_url=final_url or url, phash=phash)


PAIRS = {
    "dom": ("https://blocked.example/a.jpg", None, DropReason.BLOCKLIST_DOMAIN),
    "sub": ("https://img.cdn.Blocked.Example./a.jpg", None, DropReason.BLOCKLIST_DOMAIN),
    "page": ("https://cdn.other/a.jpg", "https://www.optout.example/gallery", DropReason.BLOCKLIST_PAGE_DOMAIN),
    "prefix": ("https://cdn.example.com/takedown/x/y.jpg", None, DropReason.BLOCKLIST_URL_PREFIX),
    "exact": ("https://CDN.example.com:443/one.jpg#top", None, DropReason.BLOCKLIST_URL),
    "near_miss_dom": ("https://notblocked.example/a.jpg", None, None),
    "near_miss_prefix": ("https://cdn.example.com/takedown.jpg", None, None),
    "near_miss_exact": ("https://cdn.example.com/one.jpg?v=2", None, None),
    "bad_url": ("http://host:badport/x.jpg", None, None),
}


def test_each_url_list_gives_its_own_reason(spec):
    lists = load_blocklists(spec)
    for key, (url, page, expected) in PAIRS.items():
        verdict = check_pair(lists, _pair(key, url, page or "https://site.example/p"))
        assert (verdict[0] if verdict else None) == expected, key


def test_hash_lists_and_redirects(spec):
    lists = load_blocklists(spec)
    listed = np.array(lists.phashes, dtype=np.uint64)
    within = f"{int(PHASH_BAD, 16) ^ 0b1111:016x}"  # 4 bits away: inside radius 4
    outside = f"{int(PHASH_BAD, 16) ^ 0b11111:016x}"  # 5 bits away
    cases = {
        "sha": (_image("sha", sha=SHA_BAD.upper()), DropReason.BLOCKLIST_SHA256),
        "phash": (_image("phash", phash=within), DropReason.BLOCKLIST_PHASH),
        "phash_far": (_image("far", phash=outside), None),
        "redirect": (_image("redir", final_url="https://blocked.example/real.jpg"), DropReason.BLOCKLIST_DOMAIN),
        "clean": (_image("clean"), None),
        "unhashed": (_image("unhashed", phash=""), None),
    }
    for name, (image, expected) in cases.items():
        verdict = check_image(lists, listed, image)
        assert (verdict[0] if verdict else None) == expected, name
    assert "after redirect" in check_image(lists, listed, cases["redirect"][0])[1]
    assert nearest_phash(listed, within) == (4, int(PHASH_BAD, 16))


def test_apply_blocklists_pipeline_routes_and_counts(spec):
    pairs = [_pair(k, url, page or "https://site.example/p") for k, (url, page, _) in PAIRS.items()]
    expected_drops = [(k, r.value) for k, (_, _, r) in PAIRS.items() if r]
    expected_kept = [k for k, (_, _, r) in PAIRS.items() if not r]
    p = local_test_pipeline()
    kept, rejected = p | beam.Create(pairs) | ApplyBlocklists(spec)
    assert_that(kept | "KeptKeys" >> beam.Map(lambda a: a.key), equal_to(expected_kept), label="Kept")
    assert_that(rejected | "Reasons" >> beam.Map(lambda r: (r.key, r.reason)), equal_to(expected_drops),
                label="Rejected")
    result = p.run()
    result.wait_until_finish()
    assert counter(result, "blocklist.domain") == 2


def test_block_image_hashes_pipeline(spec):
    images = [_image("sha", sha=SHA_BAD), _image("phash", phash=PHASH_BAD), _image("clean")]
    p = local_test_pipeline()
    kept, rejected = p | beam.Create(images) | BlockImageHashes(spec)
    assert_that(kept | "KeptKeys" >> beam.Map(lambda a: a.pair.key), equal_to(["clean"]), label="Kept")
    assert_that(rejected | "Reasons" >> beam.Map(lambda r: (r.key, r.stage, r.reason)),
                equal_to([("sha", "blocklist", "blocklist.sha256"), ("phash", "blocklist", "blocklist.phash")]),
                label="Rejected")
    p.run().wait_until_finish()


def test_blocklist_stats(spec):
    assert blocklist_stats(spec_with(blocklist_spec)) == {}
    assert blocklist_stats(spec) == {"entries": {"domains": 2, "url_prefixes": 1, "urls": 1, "sha256": 1,
                                                 "phash": 1}, "phash_radius": 4}
