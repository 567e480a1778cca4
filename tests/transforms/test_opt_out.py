"""transforms.opt_out: the per-domain opt-out summary (robots.txt, noai, blocklists) for stats.json."""

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from pipeline.records import Rejection
from tests.conftest import local_test_pipeline
from transforms.opt_out import OTHER_DOMAINS, SummariseOptOut, opt_out_domain, summarise


def _rej(reason, image="https://img.a.example/x.jpg", page="https://pages.b.example/p"):
    return Rejection(key="k", stage=reason.split(".")[0], reason=reason, image_url=image, page_url=page)


def test_domain_is_the_page_host_only_for_page_domain_blocks():
    assert opt_out_domain(_rej("fetch.noai")) == "img.a.example"
    assert opt_out_domain(_rej("blocklist.page_domain")) == "pages.b.example"
    assert opt_out_domain(_rej("fetch.robots_disallowed", image="http://[bad")) == "(no host)"


def test_server_and_page_opt_outs_are_counted_where_they_were_said():
    from transforms.opt_out import OPT_OUT_REASONS

    assert {"fetch.tdm_reserved", "extract.page_noai", "extract.tdm_reserved",
            "fetch.robots_disallowed", "fetch.noai"} <= OPT_OUT_REASONS
    # A host that is down or slow did not say no: not an opt-out (its pairs still have their reason).
    assert not {"fetch.host_too_slow", "fetch.timeout", "fetch.robots_unavailable"} & OPT_OUT_REASONS
    assert opt_out_domain(_rej("fetch.tdm_reserved")) == "img.a.example"  # header / tdmrep.json of the image host
    assert opt_out_domain(_rej("extract.page_noai")) == "pages.b.example"  # a <meta> on the page
    assert opt_out_domain(_rej("extract.tdm_reserved")) == "pages.b.example"


def test_summary_caps_domains_and_sums_the_rest():
    counts = [(("a.com", "fetch.noai"), 5), (("b.com", "fetch.noai"), 3), (("c.com", "blocklist.url"), 1),
              (("a.com", "blocklist.domain"), 2)]
    out = summarise(counts, max_domains=2)
    assert out["total"] == {"blocklist.domain": 2, "blocklist.url": 1, "fetch.noai": 8}
    assert out["by_domain"] == {"a.com": {"blocklist.domain": 2, "fetch.noai": 5}, "b.com": {"fetch.noai": 3},
                                OTHER_DOMAINS: {"blocklist.url": 1}}
    assert out["domains"] == 3


def test_pipeline_ignores_other_reasons_and_always_emits():
    rejections = [_rej("fetch.noai"), _rej("fetch.noai"), _rej("fetch.robots_disallowed", image="https://r.example/a"),
                  _rej("blocklist.page_domain"), _rej("caption.empty"), _rej("fetch.timeout")]
    p = local_test_pipeline()
    values = p | beam.Create(rejections) | SummariseOptOut()
    assert_that(values, equal_to([
        ("opt_out", "total", {"blocklist.page_domain": 1, "fetch.noai": 2, "fetch.robots_disallowed": 1}),
        ("opt_out", "by_domain", {"img.a.example": {"fetch.noai": 2}, "pages.b.example": {"blocklist.page_domain": 1},
                                  "r.example": {"fetch.robots_disallowed": 1}}),
        ("opt_out", "domains", 3)]))
    empty = p | "Empty" >> beam.Create([_rej("caption.empty")]) | "Summary2" >> SummariseOptOut()
    assert_that(empty, equal_to([("opt_out", "total", {}), ("opt_out", "by_domain", {}), ("opt_out", "domains", 0)]),
                label="Empty")
    p.run().wait_until_finish()


def _brute_force(counts, max_domains):
    """The summary by sorting every domain (what the bounded combine must equal)."""
    from collections import Counter, defaultdict

    per = defaultdict(Counter)
    for (domain, reason), n in counts:
        per[domain][reason] += n
    ranked = sorted(per.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    by_domain = {d: dict(sorted(c.items())) for d, c in ranked[:max_domains]}
    rest = sum((c for _, c in ranked[max_domains:]), Counter())
    if rest:
        by_domain[OTHER_DOMAINS] = dict(sorted(rest.items()))
    return {"total": dict(sorted(sum(per.values(), Counter()).items())), "by_domain": by_domain,
            "domains": len(per)}


def _many_counts(n_domains=300):
    reasons = ("fetch.noai", "fetch.robots_disallowed", "blocklist.domain")
    return [((f"d{i:04d}.example", reasons[i % 3]), 1 + (i * 7919) % 13) for i in range(n_domains)]


def test_summary_accumulator_stays_bounded_and_exact():
    from transforms.opt_out import SummaryFn, per_domain_counts

    counts = _many_counts()
    fn = SummaryFn(max_domains=5)
    accs = []
    items = list(per_domain_counts(counts).items())
    for part in (items[:100], items[100:230], items[230:]):  # three "bundles", merged as Beam would
        acc = fn.create_accumulator()
        for item in part:
            acc = fn.add_input(acc, item)
            assert len(acc[0]) <= 10  # never every domain: at most 2 * max_domains
        accs.append(acc)
    merged = fn.merge_accumulators(accs)
    assert len(merged[0]) <= 10
    assert fn.extract_output(merged) == _brute_force(counts, 5)
    assert summarise(counts, 5) == _brute_force(counts, 5)


def test_pipeline_caps_many_domains_like_a_full_sort():
    counts = _many_counts(120)
    rejections = [_rej(reason, image=f"https://{domain}/x.jpg") for (domain, reason), n in counts for _ in range(n)]
    p = local_test_pipeline()
    values = p | beam.Create(rejections) | SummariseOptOut(max_domains=4)
    expected = _brute_force(counts, 4)
    assert_that(values, equal_to([("opt_out", name, value) for name, value in expected.items()]))
    p.run().wait_until_finish()
