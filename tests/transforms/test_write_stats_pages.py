"""transforms.write_stats: stats.json says which pages failed and why (pages.failed_samples)."""

import json

import apache_beam as beam

from pipeline.records import DropReason, PageFailure
from tests.conftest import local_test_pipeline
from transforms.write_stats import FAILED_PAGES_PER_REASON, SampleFailedPages, WriteStats, build_stats


def _stats(tmp_path, failures):
    events = [("pairs",), ("kept",), ("page_ok",)] + [("page_fail", f.reason.value) for f in failures]
    with local_test_pipeline() as p:
        values = p | "Failures" >> beam.Create(failures) | SampleFailedPages()
        _ = p | "Events" >> beam.Create(events) | WriteStats(str(tmp_path), [], {"stages": []}, values)
    return json.loads((tmp_path / "stats.json").read_text())


def test_failed_pages_are_listed_with_reason_and_detail(tmp_path):
    failures = [PageFailure(f"http://h.test/p{i:02d}.html", DropReason.CRAWL_HTTP_4XX, "http_4xx: HTTP 404")
                for i in range(FAILED_PAGES_PER_REASON + 3)]
    failures.append(PageFailure("http://h.test/slow.html", DropReason.CRAWL_ERROR, "timeout: read"))
    pages = _stats(tmp_path, failures)["pages"]
    assert pages["fetched"] == 1 and pages["failed"] == len(failures)
    assert pages["failed_by_reason"] == {"crawl.error": 1, "crawl.http_4xx": FAILED_PAGES_PER_REASON + 3}
    samples = pages["failed_samples"]
    assert samples[0] == {"url": "http://h.test/slow.html", "reason": "crawl.error", "detail": "timeout: read"}
    http = [s["url"] for s in samples if s["reason"] == "crawl.http_4xx"]
    assert http == [f"http://h.test/p{i:02d}.html" for i in range(FAILED_PAGES_PER_REASON)]  # the smallest, bounded


def test_no_failed_pages_is_an_empty_list(tmp_path):
    assert _stats(tmp_path, [])["pages"]["failed_samples"] == []


def test_the_samples_never_replace_the_page_counts():
    extra = {"stages": [], "pages": {"failed_samples": [{"url": "u", "reason": "crawl.error", "detail": ""}],
                                     "fetched": 99}}
    pages = build_stats([(("page_ok",), 2), (("page_fail", "crawl.error"), 1)], [], extra)["pages"]
    assert pages["fetched"] == 2 and pages["failed"] == 1 and len(pages["failed_samples"]) == 1
