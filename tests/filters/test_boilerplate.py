"""filters.boilerplate: the same alt text on more than N distinct images of a site."""

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from filters.boilerplate import DropBoilerplate, boilerplate_key, distinct_images
from pipeline.records import AltPair, DropReason
from tests.conftest import counter as _counter, local_test_pipeline


def _pair(n: int, caption: str, site: str = "shop.test", image: str = "", page_url: str = "") -> AltPair:
    return AltPair(key=f"k{site}{n}{caption[:3]}", page_url=page_url or f"http://{site}/p{n}.html",
                   image_url=image or f"http://cdn.test/{site}/{n}.jpg", caption=caption)


def test_key_is_site_and_normalised_caption():
    assert boilerplate_key(_pair(1, "  Product IMAGE. ")) == ("shop.test", "product image")
    assert boilerplate_key(AltPair(key="k", page_url="", image_url="http://x/1.jpg", caption="a b c")) is None
    assert boilerplate_key(_pair(1, "...")) is None


def test_distinct_images_counts_urls_not_pairs():
    same = [_pair(i, "logo", image="http://cdn.test/logo.png") for i in range(5)]
    assert distinct_images(same) == 1
    assert distinct_images([_pair(i, "x") for i in range(50)], cap=10) == 11  # stops past the cap


def test_drop_boilerplate_pipeline():
    read_more = [_pair(i, "Read more" if i % 2 else "read more!") for i in range(4)]   # 4 distinct images
    logo = [_pair(i, "Shop logo in red", image="http://cdn.test/logo.png") for i in range(6)]  # 1 image
    product = [_pair(i, "Blue cotton t-shirt front") for i in range(3)]              # 3: at the limit
    other_site = [_pair(i, "Read more", site="blog.test") for i in range(2)]          # another site
    listed = [AltPair(key=f"l{i}", page_url="", image_url=f"http://x/{i}.jpg", caption="Read more")
              for i in range(5)]                                                       # no page: no site
    p = local_test_pipeline()
    kept, rejected = p | beam.Create(read_more + logo + product + other_site + listed) | DropBoilerplate(3)
    assert_that(kept | "KeptKeys" >> beam.Map(lambda r: r.key),
                equal_to([x.key for x in logo + product + other_site + listed]), label="kept")
    assert_that(rejected | "Rejected" >> beam.Map(lambda r: (r.key, r.reason, r.detail)),
                equal_to([(x.key, DropReason.CAPTION_BOILERPLATE.value,
                           "'read more' on 4 distinct images of shop.test (max 3)") for x in read_more]),
                label="rejected")
    result = p.run()
    result.wait_until_finish()
    assert _counter(result, DropReason.CAPTION_BOILERPLATE.value) == 4


def test_zero_is_not_a_limit():
    with pytest.raises(ValueError):
        DropBoilerplate(0)


def test_distinct_urls_merges_capped_partial_sets_exactly():
    from filters.boilerplate import DistinctUrls

    fn = DistinctUrls(cap=10)
    # Three "bundles": one with 12 distinct URLs (capped at 11), two small ones overlapping it.
    parts = [[f"u{i}" for i in range(12)], ["u0", "u1", "v0"], ["v0", "v1"]]
    accs = []
    for urls in parts:
        acc = fn.create_accumulator()
        for url in urls:
            acc = fn.add_input(acc, url)
        assert len(acc) <= 11  # a partial set never holds more than cap + 1 URLs
        accs.append(acc)
    merged = fn.merge_accumulators(accs)
    assert len(merged) <= 11 and fn.extract_output(merged) == 11  # "more than 10"
    small = fn.merge_accumulators([{"a", "b"}, {"b", "c"}, set()])
    assert fn.extract_output(small) == 3  # under the cap: exact


def test_pairs_of_a_hot_key_need_no_grouping():
    # One icon on many pages of one site: one distinct URL, every pair kept; a template caption on
    # 5 distinct images with the limit 4: all 5 dropped, wherever they are in the input.
    icon = [_pair(i, "Edit this at Wikidata", image="http://cdn.test/wd.svg") for i in range(300)]
    template = [_pair(i, "Photo of the product", image=f"http://cdn.test/t{i}.jpg") for i in range(5)]
    p = local_test_pipeline()
    kept, rejected = p | beam.Create(icon + template) | DropBoilerplate(4)
    assert_that(kept | "KeptKeys" >> beam.Map(lambda r: r.key), equal_to([x.key for x in icon]), label="kept")
    assert_that(rejected | "RejectedKeys" >> beam.Map(lambda r: (r.key, r.detail)),
                equal_to([(x.key, "'photo of the product' on 5 distinct images of shop.test (max 4)")
                          for x in template]), label="rejected")
    p.run().wait_until_finish()


def test_numbered_captions_are_one_template():
    # A gallery's "photo No. 1" ... "photo No. 12": no two captions are equal, their form is.
    gallery = [_pair(i, f"photo No. {i + 1}", site="gallery.test") for i in range(12)]
    coins = [_pair(i, f"A US {c} cent coin on a table", site="gallery.test") for i, c in enumerate((1, 5, 10))]
    assert len({boilerplate_key(p) for p in gallery}) == 1
    p = local_test_pipeline()
    kept, rejected = p | beam.Create(gallery + coins) | DropBoilerplate(10)
    assert_that(kept | "KeptKeys" >> beam.Map(lambda r: r.key), equal_to([x.key for x in coins]), label="kept")
    assert_that(rejected | "Rejected" >> beam.Map(lambda r: (r.key, r.detail)),
                equal_to([(x.key, "'photo no. #' on 12 distinct images of gallery.test (max 10)") for x in gallery]),
                label="rejected")
    p.run().wait_until_finish()
