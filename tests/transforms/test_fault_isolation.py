"""Per-item fault isolation: a bug that one item trips costs that item, never the run.

Each test injects a bug for one specific item (a function on the path raises for one
URL, page, line or caption) and checks that the item ends as its stage's
``*.internal_error`` with a detail naming the exception and where, that every other
item is unaffected, and that the counters say so. No network: the HTTP client is a
fake (the guards wrap whatever the client does).
"""

import io
import logging

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from PIL import Image

import filters.caption_rules as caption_rules_mod
import transforms.crawl as crawl_mod
import transforms.extract_alt_text as extract_mod
import transforms.fetch as fetch_mod
import transforms.hashing as hashing_mod
import transforms.sources as sources_mod
from filters.base import ApplyRules, first_failure, internal_reason
from filters.caption_rules import caption_rules
from pipeline import faults
from pipeline.config import CurateConfig
from pipeline.specs import caption_spec, resize_spec
from pipeline.metrics import Counter
from pipeline.records import (DETAIL_MAX_CHARS, AltPair, DropReason, FetchedImage, Page, PageFailure, Rejection,
                              ResizedImage, make_key)
from pipeline.specs import client_settings, crawl_spec, extract_spec, fetch_spec
from tests.conftest import counter as _counter, local_test_pipeline
from tests.default_specs import spec_with
from tests.transforms.crawl_run import crawl
from transforms.crawl import DuplicatePages
from transforms.crawl_frontier import FetchPages
from transforms.extract_alt_text import ExtractAltText
from transforms.fetch import FetchImages, fetch_and_resize
from transforms.fetch_scheduler import HostScheduler
from transforms.hashing import with_hashes
from transforms.http_client import FetchResult
from transforms.sources import ReadSeeds
from transforms.write_stats import SampleInternalErrors, build_stats

SETTINGS = spec_with(client_settings, allow_private_networks=True, retries=0, pool_size=4)


class InjectedBug(RuntimeError):
    """The bug a test plants for one item."""


def _jpeg(side: int = 40) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (side, side), (200, 30, 30)).save(buf, "JPEG")
    return buf.getvalue()


def _pair(key: str, url: str, caption: str = "a red square on white") -> AltPair:
    return AltPair(key=key, page_url="http://site.test/", image_url=url, caption=caption)


# -- pipeline/faults.py: the bounded detail -------------------------------------------------

def _raise_in_our_code():
    # raised through a function of ours (transforms.fetch.host_of), the innermost frame of ours
    return fetch_mod.host_of(None)  # AttributeError: 'NoneType' has no attribute image_url


def test_detail_names_type_message_and_the_innermost_frame_of_ours():
    with pytest.raises(AttributeError) as info:
        _raise_in_our_code()
    detail = faults.describe(info.value)
    assert detail.startswith("AttributeError: ") and "image_url" in detail
    assert " @ transforms/fetch.py:" in detail and detail.endswith(" in host_of")


def test_detail_is_bounded_and_survives_hostile_messages():
    class Weird(Exception):
        def __str__(self):
            raise ValueError("no")

    huge = InjectedBug("x\n" * 100_000)
    for exc in (huge, Weird(), InjectedBug(""), KeyError("\x00\ud800")):
        try:
            raise exc
        except Exception as caught:  # noqa: PERF203 - one per case
            detail = faults.describe(caught)
        assert len(detail) <= DETAIL_MAX_CHARS and " @ " in detail
    assert faults.describe(Weird()).startswith(f"{__name__}.")  # not a builtin: module-qualified
    assert "<unprintable message>" in faults.describe(Weird())
    assert faults.describe(InjectedBug("")).startswith(f"{__name__}.InjectedBug @ ")


def test_logging_is_rate_limited_per_reason(caplog):
    reason = DropReason.WARC_INTERNAL
    before = faults.seen_counts().get(reason.value, 0)
    with caplog.at_level(logging.WARNING, logger="pipeline.faults"):
        for i in range(faults.LINES_PER_REASON + 50):
            try:
                raise InjectedBug(f"item {i}")
            except InjectedBug as exc:
                faults.internal_error(reason, exc, f"item-{i}")
    records = [r for r in caplog.records if r.getMessage().startswith(reason.value)]
    assert len(records) <= faults.LINES_PER_REASON - before + 1
    with_tb = [r for r in records if "Traceback" in r.getMessage()]
    assert len(with_tb) <= faults.TRACEBACKS_PER_REASON
    assert all(len(r.getMessage()) < faults.TRACEBACK_MAX_CHARS + 1000 for r in records)
    assert faults.seen_counts()[reason.value] == before + faults.LINES_PER_REASON + 50


# -- HostScheduler: the failed item is handed back, its host's slot freed -------------------

def run_all(fn, groups, total, per_host, on_error=None) -> list:
    """Every result of ``fn`` over all groups (completion order)."""
    scheduler = HostScheduler(fn, total, per_host, on_error)
    try:
        for host, items in groups:
            scheduler.add(host, items)
        return list(scheduler.drain())
    finally:
        scheduler.close()


def _flaky(bad: set, calls: list):
    def fn(item):
        calls.append(item)
        if item in bad:
            raise InjectedBug(f"bug on {item}")
        return f"ok {item}"
    return fn


def test_scheduler_hands_the_failed_item_back_and_keeps_going():
    calls: list = []
    groups = [("a", ["a1", "a2", "a3"]), ("b", ["b1", "b2"])]
    out = run_all(_flaky({"a1", "b2"}, calls), groups, total=2, per_host=1,
                  on_error=lambda item, exc: f"failed {item}: {type(exc).__name__}")
    assert sorted(out) == ["failed a1: InjectedBug", "failed b2: InjectedBug", "ok a2", "ok a3", "ok b1"]
    assert sorted(calls) == ["a1", "a2", "a3", "b1", "b2"]


def test_scheduler_frees_the_host_slot_of_a_failed_call():
    scheduler = HostScheduler(_flaky({"x1"}, []), total=4, per_host=1, on_error=lambda item, exc: None)
    try:
        scheduler.add("x", ["x1", "x2"])  # per_host=1: x2 starts only once x1's slot is back
        results = list(scheduler.drain())
        assert results.count(None) == 1 and "ok x2" in results
        assert scheduler.idle and not scheduler.pending("x")
    finally:
        scheduler.close()


def test_scheduler_without_on_error_and_base_exceptions_still_raise():
    with pytest.raises(InjectedBug):
        run_all(_flaky({"a1"}, []), [("a", ["a1"])], total=1, per_host=1)

    def interrupt(item):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_all(interrupt, [("a", ["a1"])], total=1, per_host=1, on_error=lambda item, exc: None)


# -- FetchImages: download phase -> fetch.internal_error, resize phase -> image.internal_error

def _fake_fetch_image(bad_url: str):
    data = _jpeg()

    def fetch_image(client, pair, svg):
        if pair.image_url == bad_url:
            raise InjectedBug("bug in the download of one URL")
        return FetchedImage(pair=pair, data=data, final_url=pair.image_url, mime="image/jpeg")
    return fetch_image


def _raise_for(url: str, real):
    def resize_fetched(fetched, spec, pool=None):
        if fetched.pair.image_url == url:
            raise InjectedBug("bug in the resize of one image")
        return real(fetched, spec, pool)
    return resize_fetched


def test_fetch_and_resize_isolates_each_phase(monkeypatch):
    monkeypatch.setattr(fetch_mod, "fetch_image", _fake_fetch_image("http://h/bug-download.jpg"))
    monkeypatch.setattr(fetch_mod, "resize_fetched", _raise_for("http://h/bug-resize.jpg", fetch_mod.resize_fetched))
    spec = spec_with(resize_spec, image_size=16)
    ok = fetch_and_resize(None, spec, _pair("ok", "http://h/ok.jpg"))
    assert isinstance(ok, ResizedImage)
    bad = fetch_and_resize(None, spec, _pair("r", "http://h/bug-resize.jpg"))
    assert isinstance(bad, Rejection) and bad.reason == "image.internal_error" and bad.stage == "image"
    assert "InjectedBug: bug in the resize" in bad.detail and "@ transforms/fetch.py:" in bad.detail
    with pytest.raises(InjectedBug):  # the download phase is isolated by the scheduler (next test)
        fetch_and_resize(None, spec, _pair("d", "http://h/bug-download.jpg"))


def test_fetch_images_pipeline_turns_one_bug_into_one_rejection(monkeypatch):
    monkeypatch.setattr(fetch_mod, "fetch_image", _fake_fetch_image("http://h1.test/bug.jpg"))
    monkeypatch.setattr(fetch_mod, "resize_fetched", _raise_for("http://h2.test/bug.jpg", fetch_mod.resize_fetched))
    urls = {"a": "http://h1.test/a.jpg", "b": "http://h1.test/bug.jpg", "c": "http://h1.test/c.jpg",
            "d": "http://h2.test/d.jpg", "e": "http://h2.test/bug.jpg", "f": "http://[oops/f.jpg"}
    pairs = [_pair(k, u) for k, u in urls.items() if k != "f"]
    p = local_test_pipeline()
    images, rejected = (p | beam.Create(pairs)
                        | FetchImages(SETTINGS, spec_with(fetch_spec, concurrency=4, per_host=1),
                                      resize=spec_with(resize_spec, image_size=16)))
    assert_that(images | "Keys" >> beam.Map(lambda im: im.pair.key), equal_to(["a", "c", "d"]), label="kept")
    assert_that(rejected | "Reasons" >> beam.Map(lambda r: (r.key, r.reason, "InjectedBug" in r.detail,
                                                             "@ transforms/fetch.py:" in r.detail)),
                equal_to([("b", "fetch.internal_error", True, True), ("e", "image.internal_error", True, True)]),
                label="rejected")
    result = p.run()
    result.wait_until_finish()
    assert _counter(result, DropReason.FETCH_INTERNAL.value) == 1
    assert _counter(result, DropReason.IMAGE_INTERNAL.value) == 1
    assert _counter(result, Counter.IMAGES_FETCHED.value) == 3


def test_host_of_never_raises():
    assert fetch_mod.host_of(_pair("k", "http://[oops/f.jpg")) == "[oops"
    assert fetch_mod.host_of(_pair("k", "http://[::1/f.jpg")) == "[::1"
    assert fetch_mod.host_of(_pair("k", "http://Example.COM:81/x")) == "example.com:81"


# -- crawl: one page's bug is that page's crawl.internal_error, the crawl goes on -----------

SITE = {
    "/": b'<a href="/a.html">a</a> <a href="/b.html">b</a> <a href="/c.html">c</a>',
    "/a.html": b'<a href="/from-a.html">x</a>',
    "/b.html": b'<a href="/from-b.html">x</a>',
    "/c.html": b'<a href="/from-c.html">x</a>',
    "/from-a.html": b"<p>a leaf</p>",
    "/from-b.html": b"<p>only b links here</p>",
    "/from-c.html": b"<p>only c links here</p>",
}
BASE = "http://site.test"


class FakeClient:
    """Serves SITE; ``get`` raises for ``bad`` (a bug in the client for one URL)."""

    def __init__(self, bad: str = "", *_args, **_kwargs):
        self.bad = bad

    def get(self, url, **_kwargs):
        if url == self.bad:
            raise InjectedBug(f"client bug on {url}")
        path = url.removeprefix(BASE)
        if path not in SITE:
            return FetchResult(ok=False, url=url, status=404, failure="http_4xx", detail="404")
        return FetchResult(ok=True, url=url, final_url=url, status=200, content_type="text/html",
                           data=SITE[path] + path.encode())  # distinct bytes per page

    def close(self):
        pass


def _outcomes(results) -> dict:
    return {r.url.removeprefix(BASE): (r.reason.value if isinstance(r, PageFailure) else "page") for r in results}


def test_link_extraction_bug_on_one_page_loses_only_that_page(monkeypatch):
    real = crawl_mod.page_links

    def page_links(html, page_url, *args, **kwargs):
        if page_url.endswith("/b.html"):
            raise InjectedBug("link extraction bug")
        return real(html, page_url, *args, **kwargs)

    monkeypatch.setattr(crawl_mod, "page_links", page_links)
    monkeypatch.setattr("transforms.host_fetch.HttpClient", lambda settings: FakeClient())
    results = crawl([BASE + "/"], SETTINGS, max_depth=2, max_pages=100).results
    assert _outcomes(results) == {"/": "page", "/a.html": "page", "/b.html": "crawl.internal_error",
                                  "/c.html": "page", "/from-a.html": "page", "/from-c.html": "page"}
    failure = next(r for r in results if isinstance(r, PageFailure))
    assert failure.detail.startswith("tests.transforms.test_fault_isolation.InjectedBug: link extraction bug")
    assert "@ transforms/crawl.py:" in failure.detail and failure.detail.endswith("in _visit")


def test_client_bug_on_one_page_loses_only_that_page(monkeypatch):
    monkeypatch.setattr("transforms.host_fetch.HttpClient", lambda settings: FakeClient(bad=BASE + "/a.html"))
    results = crawl([BASE + "/"], SETTINGS, max_depth=2, max_pages=100).results
    outcomes = _outcomes(results)
    assert outcomes.pop("/a.html") == "crawl.internal_error"
    assert outcomes == {"/": "page", "/b.html": "page", "/c.html": "page", "/from-b.html": "page",
                        "/from-c.html": "page"}


def test_duplicate_check_bug_is_isolated_too(monkeypatch):
    real = DuplicatePages.check_url

    def check_url(self, url, canonical, digest):
        if url.endswith("/c.html"):
            raise InjectedBug("dedupe bug")
        return real(self, url, canonical, digest)

    monkeypatch.setattr(DuplicatePages, "check_url", check_url)
    monkeypatch.setattr("transforms.host_fetch.HttpClient", lambda settings: FakeClient())
    out = crawl([BASE + "/"], SETTINGS, max_depth=2, max_pages=100)
    # the pages after c.html in crawl order are still checked: from-a.html and from-b.html are
    # pages; c.html's links were read before its check, so from-c.html is crawled too
    assert _outcomes(out.results) == {"/": "page", "/a.html": "page", "/b.html": "page",
                                      "/c.html": "crawl.internal_error", "/from-a.html": "page",
                                      "/from-b.html": "page", "/from-c.html": "page"}
    assert "dedupe bug" in out.failures[0].detail and out.counters[DropReason.CRAWL_INTERNAL.value] == 1


def test_fetch_pages_pipeline_counts_the_internal_error(monkeypatch):
    monkeypatch.setattr("transforms.host_fetch.HttpClient", lambda settings: FakeClient(bad=BASE + "/c.html"))
    p = local_test_pipeline()
    pages, failures = (p | beam.Create([BASE + "/"])
                       | FetchPages(spec_with(crawl_spec, max_depth=1, max_pages=100), SETTINGS))
    assert_that(pages | "Urls" >> beam.Map(lambda pg: pg.url.removeprefix(BASE)),
                equal_to(["/", "/a.html", "/b.html"]), label="pages")
    assert_that(failures | "Failures" >> beam.Map(lambda f: (f.url.removeprefix(BASE), f.reason.value)),
                equal_to([("/c.html", "crawl.internal_error")]), label="failures")
    result = p.run()
    result.wait_until_finish()
    assert _counter(result, DropReason.CRAWL_INTERNAL.value) == 1


# -- extract: one page's bug is one rejection keyed by the page, counted as a pair -------------

PAGE_OK = Page(url="http://site.test/ok.html", depth=0, html=b'<img src="/1.jpg" alt="one"><img src="/2.jpg">')
PAGE_BAD = Page(url="http://site.test/bad.html", depth=0, html=b'<img src="/3.jpg" alt="three">')


def test_extract_bug_on_one_page_is_one_rejection_keyed_by_the_page(monkeypatch):
    real = extract_mod.extract_pairs

    def extract_pairs(html, page_url, content_type="", spec=None):
        if page_url == PAGE_BAD.url:
            raise InjectedBug("extraction bug")
        return real(html, page_url, content_type, spec)

    monkeypatch.setattr(extract_mod, "extract_pairs", extract_pairs)
    p = local_test_pipeline()
    pairs, rejected = p | beam.Create([PAGE_OK, PAGE_BAD]) | ExtractAltText(spec_with(extract_spec))
    assert_that(pairs | "Keys" >> beam.Map(lambda r: r.key),
                equal_to([make_key(PAGE_OK.url, 0), make_key(PAGE_OK.url, 1)]), label="pairs")
    assert_that(rejected | "Rej" >> beam.Map(lambda r: (r.key, r.stage, r.reason, r.page_url, r.image_url,
                                                         "InjectedBug: extraction bug" in r.detail,
                                                         "@ transforms/extract_alt_text.py:" in r.detail)),
                equal_to([(make_key(PAGE_BAD.url, -1), "extract", "extract.internal_error", PAGE_BAD.url, "",
                           True, True)]), label="rejected")
    result = p.run()
    result.wait_until_finish()
    assert _counter(result, Counter.PAIRS_EXTRACTED.value) == 3  # 2 pairs + the page's one rejection
    assert _counter(result, DropReason.EXTRACT_INTERNAL.value) == 1


# -- seeds: a line that trips parsing is a page failure, not fatal ------------------------------

def test_seed_line_bug_is_a_page_failure(monkeypatch):
    real = sources_mod.parse_seed_line

    def parse_seed_line(line):
        if "bad" in line:
            raise InjectedBug("seed parsing bug")
        return real(line)

    monkeypatch.setattr(sources_mod, "parse_seed_line", parse_seed_line)
    p = local_test_pipeline()
    lines = ["http://a.test/", "http://bad.test/", "# comment", "http://b.test/"]
    seeds, failures = p | ReadSeeds(urls=lines, with_failures=True)
    assert_that(seeds, equal_to(["http://a.test/", "http://b.test/"]), label="seeds")
    assert_that(failures | beam.Map(lambda f: (f.url, f.reason.value, "InjectedBug" in f.detail,
                                                "@ transforms/sources.py:" in f.detail)),
                equal_to([("http://bad.test/", "crawl.internal_error", True, True)]), label="failures")
    result = p.run()
    result.wait_until_finish()
    assert _counter(result, DropReason.CRAWL_INTERNAL.value) == 1


def test_read_seeds_without_failures_keeps_its_one_output(monkeypatch):
    monkeypatch.setattr(sources_mod, "parse_seed_line", lambda line: (_ for _ in ()).throw(InjectedBug("x"))
                        if "bad" in line else line)
    with local_test_pipeline() as p:
        seeds = p | ReadSeeds(urls=["http://a.test/", "http://bad.test/"])
        assert_that(seeds, equal_to(["http://a.test/"]))


# -- ApplyRules: a rule that raises on one record rejects that record -----------------------------

def test_caption_rule_bug_rejects_that_pair_only(monkeypatch):
    real = caption_rules_mod.caption_verdict

    def caption_verdict(caption, cfg):
        if caption == "the caption that trips a bug":
            raise ZeroDivisionError("division by zero")
        return real(caption, cfg)

    monkeypatch.setattr(caption_rules_mod, "caption_verdict", caption_verdict)
    pairs = [_pair("ok", "http://h/1.jpg"), _pair("bug", "http://h/2.jpg", "the caption that trips a bug"),
             _pair("short", "http://h/3.jpg", "ab")]
    p = local_test_pipeline()
    kept, rejected = p | beam.Create(pairs) | ApplyRules(caption_rules(caption_spec(CurateConfig())))
    assert_that(kept | "K" >> beam.Map(lambda r: r.key), equal_to(["ok"]), label="kept")
    assert_that(rejected | "R" >> beam.Map(lambda r: (r.key, r.reason, r.detail.split(" @ ")[0],
                                                       "@ filters/caption_rules.py:" in r.detail)),
                equal_to([("bug", "caption.internal_error", "ZeroDivisionError: division by zero", True),
                          ("short", "caption.too_short", "1 words, 2 chars", False)]), label="rejected")
    result = p.run()
    result.wait_until_finish()
    assert _counter(result, DropReason.CAPTION_INTERNAL.value) == 1


class _Rule:
    def __init__(self, name, internal_error=None):
        self.name = name
        if internal_error is not None:
            self.internal_error = internal_error

    def check(self, record):
        raise InjectedBug("rule bug")


@pytest.mark.parametrize("rule,reason", [
    (_Rule("caption_language"), DropReason.CAPTION_INTERNAL),
    (_Rule("image_size"), DropReason.IMAGE_INTERNAL),
    (_Rule("safety"), DropReason.SAFETY_INTERNAL),
    (_Rule("clip_threshold"), DropReason.CLIP_INTERNAL),
    (_Rule("license"), DropReason.LICENSE_INTERNAL),
    (_Rule("mystery"), DropReason.FILTER_INTERNAL),
    (_Rule("mystery", DropReason.IMAGE_INTERNAL), DropReason.IMAGE_INTERNAL),
])
def test_a_rule_names_its_stage_internal_error(rule, reason):
    assert internal_reason(rule) == reason
    verdict = first_failure([rule], _pair("k", "http://h/x.jpg"))
    assert verdict[0] == reason and "InjectedBug: rule bug" in verdict[1]


# -- hashing: a bug hashing one image leaves it unhashed, counted -------------------------------

def test_hashing_bug_leaves_that_image_unhashed(monkeypatch):
    def hash_resized(image, spec):
        raise InjectedBug("hash bug")

    monkeypatch.setattr(hashing_mod, "hash_resized", hash_resized)
    image = ResizedImage(pair=_pair("k", "http://h/x.jpg"), data=b"x", ext="jpg", width=1, height=1,
                         original_width=1, original_height=1, sha256="s")
    before = faults.seen_counts().get("image.internal_error", 0)
    out = with_hashes(image, None)
    assert (out.phash, out.colour_sig) == ("", "") and out.pair.key == "k"
    assert faults.seen_counts()["image.internal_error"] == before + 1


# -- stats.json: the internal_errors section ----------------------------------------------------

def test_stats_internal_errors_section_counts_pairs_and_pages():
    counted = [(("pairs",), 10), (("kept",), 7), (("drop", "FetchImages", "fetch.internal_error"), 1),
               (("drop", "CaptionRules", "caption.too_short"), 1), (("drop", "ExtractAltText", "extract.internal_error"), 1),
               (("page_ok",), 3), (("page_fail", "crawl.internal_error"), 2), (("page_fail", "crawl.http_4xx"), 1)]
    samples = [{"reason": "fetch.internal_error", "key": "k", "url": "u", "detail": "d"}]
    stats = build_stats(counted, ["ExtractAltText", "CaptionRules", "FetchImages"],
                        {"internal_errors": {"samples": samples}})
    assert stats["accounting_ok"] is True
    assert stats["internal_errors"] == {"total": 4, "samples": samples, "by_reason": {
        "crawl.internal_error": 2, "extract.internal_error": 1, "fetch.internal_error": 1}}
    clean = build_stats([(("pairs",), 1), (("kept",), 1)], [], {})
    assert clean["internal_errors"] == {"total": 0, "by_reason": {}, "samples": []}


def test_internal_error_samples_are_bounded_per_reason_and_deterministic():
    rejections = [Rejection(key=f"k{i:03d}", stage="fetch", reason="fetch.internal_error", detail=f"d{i}",
                            image_url=f"http://h/{i}.jpg") for i in range(50)]
    rejections += [Rejection(key="x", stage="caption", reason="caption.too_short"),
                   PageFailure("http://h/p.html", DropReason.CRAWL_INTERNAL, "boom")]
    with local_test_pipeline() as p:
        out = p | beam.Create(rejections) | SampleInternalErrors()
        assert_that(out, equal_to([("internal_errors", "samples", [
            {"reason": "crawl.internal_error", "key": "", "url": "http://h/p.html", "detail": "boom"},
            {"reason": "fetch.internal_error", "key": "k000", "url": "http://h/0.jpg", "detail": "d0"},
            {"reason": "fetch.internal_error", "key": "k001", "url": "http://h/1.jpg", "detail": "d1"},
            {"reason": "fetch.internal_error", "key": "k002", "url": "http://h/2.jpg", "detail": "d2"}])]))


def test_a_seed_that_trips_a_bug_is_a_page_failure_and_the_others_crawl(monkeypatch):
    real = crawl_mod.normalize_url

    def normalize_url(url):
        if "bug" in url:
            raise InjectedBug("normalisation bug")
        return real(url)

    monkeypatch.setattr(crawl_mod, "normalize_url", normalize_url)
    monkeypatch.setattr("transforms.host_fetch.HttpClient", lambda settings: FakeClient())
    p = local_test_pipeline()
    pages, failures = (p | beam.Create([BASE + "/", "http://bug.test/"])
                       | FetchPages(spec_with(crawl_spec, max_depth=0, max_pages=100), SETTINGS))
    assert_that(pages | "Urls" >> beam.Map(lambda pg: pg.url), equal_to([BASE + "/"]), label="pages")
    assert_that(failures | "Failures" >> beam.Map(lambda f: (f.url, f.reason.value, "InjectedBug" in f.detail)),
                equal_to([("http://bug.test/", "crawl.internal_error", True)]), label="failures")
    p.run().wait_until_finish()
