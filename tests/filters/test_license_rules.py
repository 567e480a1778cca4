"""filters.license_rules: the license.allow rule (ids, globs, unknown), the licence mix, and a small
pipeline ExtractAltText -> LicenseRules with its reasons and accounting."""

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from filters.base import ApplyRules
from filters.license_rules import CountLicenses, LicenseRule, license_allowed, license_mix, license_rules
from pipeline.metrics import Counter
from pipeline.records import AltPair, DropReason, Page, ResizedImage, ScoredImage
from pipeline.specs import extract_spec
from tests.conftest import counter as _counter, local_test_pipeline
from tests.default_specs import spec_with
from transforms.extract_alt_text import ExtractAltText


def _pair(license_id: str = "", key: str = "k") -> AltPair:
    return AltPair(key=key, page_url="http://site.test/p", image_url="http://site.test/a.jpg", caption="a b c",
                   license=license_id)


@pytest.mark.parametrize("license_id, allow, kept", [
    ("cc-by-4.0", (), True),  # no allow-list: everything
    ("cc-by-4.0", ("cc-by-4.0",), True),
    ("cc-by-4.0", ("CC-BY-4.0 ",), True),  # entries compare lower-case, trimmed
    ("CC-BY-4.0", ("cc-by-4.0",), True),
    ("cc-by-sa-4.0", ("cc-by-4.0", "cc0-1.0"), False),
    ("", ("cc-by-4.0",), False),  # not captured = unknown
    ("", ("unknown",), True),
    ("unknown", ("cc0-1.0",), False),
    ("other", ("other",), True),
    ("cc-by-sa-2.0-de", ("cc-by-sa-*",), True),  # a glob: every version and port of BY-SA
    ("cc-by-nc-sa-4.0", ("cc-by-sa-*",), False),
    ("cc-by-2.0-de", ("cc-by-2.0",), False),  # a port is its own licence unless globbed
    ("cc-by-2.0-de", ("cc-by-2.0*",), True),
])
def test_license_rule(license_id, allow, kept):
    verdict = LicenseRule(allow).check(_pair(license_id))
    if kept:
        assert verdict is None
    else:
        reason, detail = verdict
        assert reason is DropReason.LICENSE_NOT_ALLOWED
        assert detail == f"license={(license_id or 'unknown').lower()}"  # says which licence it had


def test_rule_reads_the_pair_inside_any_stage_record():
    image = ResizedImage(pair=_pair("cc-by-nc-4.0"), data=b"", ext="jpg", width=1, height=1, original_width=1,
                         original_height=1, sha256="")
    assert LicenseRule(("cc0-1.0",)).check(ScoredImage(image=image))[0] is DropReason.LICENSE_NOT_ALLOWED
    assert license_allowed("x", ()) and not license_allowed("x", ("y",))


def test_license_mix_orders_by_count_then_id():
    assert list(license_mix([("unknown", 3), ("cc0-1.0", 5), ("cc-by-4.0", 3)]).items()) == [
        ("cc0-1.0", 5), ("cc-by-4.0", 3), ("unknown", 3)]


CC_BY = "https://creativecommons.org/licenses/by/4.0/"
PAGES = [
    Page(url="http://site.test/by.html", depth=0, html=f"""<html><head><link rel="license" href="{CC_BY}"></head>
<body><img src="/1.jpg" alt="one red circle"><img src="/2.jpg" alt="two red circles"></body></html>""".encode()),
    Page(url="http://site.test/mixed.html", depth=0, html=b"""<html><body><img src="/3.jpg" alt="three squares">
<figure><img src="/4.jpg" alt="four squares"><a rel="license" href="https://creativecommons.org/licenses/by-nc/4.0/">
CC BY-NC</a></figure></body></html>"""),
    Page(url="http://site.test/noai.html", depth=0, html=b"""<html><head><meta name="robots" content="noai">
<link rel="license" href="https://creativecommons.org/licenses/by/4.0/"></head>
<body><img src="/5.jpg" alt="five dots"></body></html>"""),
]


def test_extract_then_license_rules_pipeline():
    p = local_test_pipeline()
    pairs, unusable = p | beam.Create(PAGES) | ExtractAltText(spec_with(extract_spec))
    kept, rejected = pairs | "LicenseRules" >> ApplyRules(license_rules(["cc-by-4.0"]))
    assert_that(kept | "KeptUrls" >> beam.Map(lambda r: (r.image_url, r.license)),
                equal_to([("http://site.test/1.jpg", "cc-by-4.0"), ("http://site.test/2.jpg", "cc-by-4.0")]),
                label="kept")
    assert_that(rejected | "RejectedUrls" >> beam.Map(lambda r: (r.image_url, r.reason, r.detail)),
                equal_to([("http://site.test/3.jpg", "license.not_allowed", "license=unknown"),
                          ("http://site.test/4.jpg", "license.not_allowed", "license=cc-by-nc-4.0")]),
                label="rejected")
    assert_that(unusable | "Unusable" >> beam.Map(lambda r: (r.image_url, r.reason)),
                equal_to([("http://site.test/5.jpg", "extract.page_noai")]), label="unusable")
    mix = kept | "LicenseMix" >> CountLicenses()
    assert_that(mix, equal_to([("license", "kept", {"cc-by-4.0": 2})]), label="mix")
    empty = p | "NoKept" >> beam.Create([]) | "EmptyMix" >> CountLicenses()
    assert_that(empty, equal_to([("license", "kept", {})]), label="empty mix")
    result = p.run()
    result.wait_until_finish()
    # accounting: 5 <img> extracted = 2 kept + 2 license.not_allowed + 1 page_noai
    assert _counter(result, Counter.PAIRS_EXTRACTED.value) == 5
    assert _counter(result, DropReason.LICENSE_NOT_ALLOWED.value) == 2
    assert _counter(result, DropReason.EXTRACT_PAGE_NOAI.value) == 1



def test_build_wires_license_rules_right_after_caption_rules_with_an_allow_list(tmp_path):
    from pipeline.build import STAGES, Inputs, build_pipeline, stats_extra
    from pipeline.config import load_config

    cfg = load_config([], ["license.allow=[cc0-1.0, cc-by-*]", "score.enabled=false"])
    p = beam.Pipeline()
    build_pipeline(p, cfg, Inputs(seed_urls=["http://127.0.0.1:9/"]), str(tmp_path))
    names = {t.unique_name for t in p.to_runner_api().components.transforms.values()}
    assert {"CaptionRules", "LicenseRules", "LicenseMix"} <= names
    assert STAGES[STAGES.index("CaptionRules") + 1] == "LicenseRules"
    assert stats_extra(cfg, {})["license"] == {"allow": ["cc0-1.0", "cc-by-*"]}
    assert stats_extra(load_config(), {})["license"] == {"allow": None}  # and without one, no stage (e2e)
