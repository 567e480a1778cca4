"""ExtractAltText in a TestPipeline: pairs, rejections and the pairs_extracted counter."""

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from pipeline.metrics import Counter
from pipeline.records import DropReason, Page, make_key
from pipeline.specs import extract_spec
from tests.conftest import counter as _counter, local_test_pipeline
from tests.default_specs import spec_with
from transforms.extract_alt_text import ExtractAltText

PAGE_A = Page(url="http://site.test/a.html", depth=0, content_type="text/html; charset=utf-8", html=b"""
<html><head><title>A</title></head><body>
<img src="/one.jpg" alt="a red circle on blue">
<img src="data:image/png;base64,iVBORw0KGgo=" alt="inline pixel">
<img src="two.png">
</body></html>""")
PAGE_B = Page(url="http://site.test/dir/b.html", depth=1, html="""
<html><body><figure><img src="../three.jpg" alt="caf\u00e9 on a corner"></figure>
<img alt="no source at all"></body></html>""".encode("utf-8"))




def test_extract_alt_text_pipeline():
    p = local_test_pipeline()
    pairs, rejected = p | beam.Create([PAGE_A, PAGE_B]) | ExtractAltText(spec_with(extract_spec))
    assert_that(pairs | "PairFields" >> beam.Map(lambda r: (r.key, r.image_url, r.caption, r.position)),
                equal_to([
                    (make_key(PAGE_A.url, 0), "http://site.test/one.jpg", "a red circle on blue", 0),
                    (make_key(PAGE_A.url, 2), "http://site.test/two.png", "", 2),  # no alt: CaptionRules decides
                    (make_key(PAGE_B.url, 0), "http://site.test/three.jpg", "caf\u00e9 on a corner", 0),
                ]), label="pairs")
    assert_that(rejected | "RejectionFields" >> beam.Map(lambda r: (r.key, r.stage, r.reason, r.page_url)),
                equal_to([
                    (make_key(PAGE_A.url, 1), "extract", DropReason.EXTRACT_DATA_URI.value, PAGE_A.url),
                    (make_key(PAGE_B.url, 1), "extract", DropReason.EXTRACT_BAD_URL.value, PAGE_B.url),
                ]), label="rejected")
    result = p.run()
    result.wait_until_finish()
    # every <img> is counted once: pairs_extracted == pairs + extraction rejections
    assert _counter(result, Counter.PAIRS_EXTRACTED.value) == 5
    assert _counter(result, DropReason.EXTRACT_DATA_URI.value) == 1
    assert _counter(result, DropReason.EXTRACT_BAD_URL.value) == 1
