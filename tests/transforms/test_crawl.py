"""transforms.crawl and transforms.crawl_frontier: URL normalisation, link extraction, and the
level-by-level crawl of FetchPages (run in a TestPipeline by tests/transforms/crawl_run.py)."""

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from pipeline.metrics import Counter
from pipeline.records import DropReason, Page, PageFailure
from pipeline.sample import SampleServer, generate_site
from pipeline.specs import client_settings, crawl_spec
from tests.conftest import counter as _counter, local_test_pipeline
from tests.default_specs import spec_with
from tests.transforms.crawl_run import crawl
from transforms.crawl import DuplicatePages, PageLinks, extract_links, normalize_url, page_links
from transforms.crawl_frontier import FetchPages

# Loopback only, no retries, short timeouts: the sample server answers at once.
SETTINGS = spec_with(client_settings, allow_private_networks=True, retries=0, connect_timeout_s=2,
                          read_timeout_s=2, total_timeout_s=5, pool_size=4)
MISSING = "/pages/missing.html"  # the sample site's dead "Archive" link




@pytest.fixture(scope="module")
def server():
    with SampleServer(generate_site()) as srv:
        yield srv


def _paths(results, base: str) -> list:
    return [r.url.removeprefix(base) for r in results]


# -- normalize_url ------------------------------------------------------------

@pytest.mark.parametrize("url,expected", [
    ("http://h/p#frag", "http://h/p"),                                    # fragment dropped
    ("http://h/p?b=2&a=1#x", "http://h/p?b=2&a=1"),                       # query kept as is
    ("http://h:80/p", "http://h/p"),                                      # default ports
    ("https://h:443/p", "https://h/p"),
    ("http://h:443/p", "http://h:443/p"),                                 # not default for http
    ("http://h:8080/p", "http://h:8080/p"),
    ("HTTP://Example.COM/Path", "http://example.com/Path"),               # scheme/host only
    ("http://h/a/../b/./c", "http://h/b/c"),                              # dot segments
    ("http://h/../x", "http://h/x"),
    ("http://h/a/..", "http://h/"),
    ("http://h/a/./", "http://h/a/"),                                     # trailing slash kept
    ("http://h", "http://h/"),                                            # empty path
    ("http://h?q=1", "http://h/?q=1"),
    ("  http://h/p \n", "http://h/p"),                                    # surrounding space
])
def test_normalize_url(url, expected):
    assert normalize_url(url) == expected
    assert normalize_url(expected) == expected  # idempotent


def test_normalize_url_keeps_ipv6_brackets():
    assert normalize_url("http://[::1]:8080/p") == "http://[::1]:8080/p"


def test_normalize_url_keeps_empty_segments_and_bad_ports():
    assert normalize_url("http://h//a//b") == "http://h//a//b"
    assert normalize_url("http://h:abc/x#f") == "http://h:abc/x"  # left for fetch.bad_url


def test_extract_links_survives_bad_port():
    assert extract_links(b'<a href="http://h:abc/x">x</a><a href="/ok">ok</a>', "http://h/") == ["http://h/ok"]


# -- extract_links ------------------------------------------------------------

@pytest.mark.parametrize("html,page,expected", [
    (b'<a href="b.html">b</a><a href="../up.html">u</a><a href="/root#top">r</a>', "http://h/d/a.html",
     ["http://h/d/b.html", "http://h/root", "http://h/up.html"]),
    (b'<head><base href="http://cdn.test/x/"></head><a href="y.html">y</a>', "http://h/p",
     ["http://cdn.test/x/y.html"]),
    (b'<a href="mailto:a@b.c">m</a><a href="JavaScript:void(0)">j</a><a href="tel:1">t</a>'
     b'<a href="#top">f</a><a href="">e</a><a href="ftp://h/f">f</a><a href=" /ok ">ok</a>', "http://h/",
     ["http://h/ok"]),
    (b'<a href="//other.test/p">p</a><a href="HTTP://H:80/q">q</a><a href="/q">q2</a>', "http://h/",
     ["http://h/q", "http://other.test/p"]),                            # protocol-relative; deduped
    (b"", "http://h/", []),
])
def test_extract_links(html, page, expected):
    assert extract_links(html, page) == expected


# -- the crawl against the loopback sample web ------------------------------------

# The per-host crawl's outcome on the sample web (bench/crawl_equivalence.py, run "sample"):
# the index at depth 0, the five pages it links at depth 1, the rest at depth 2.
SAMPLE_PAGES = ([("/index.html", 0)] + [(f"/pages/p{i:02d}.html", 1) for i in range(5)]
                + [(f"/pages/p{i:02d}.html", 2) for i in range(5, 24)])
TWO_WORKERS = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]


def test_crawl_reaches_every_page_of_the_sample_site(server):
    out = crawl(server.seed_urls, SETTINGS, max_depth=3, max_pages=1000, concurrency=4)
    assert [(p.url.removeprefix(server.base_url), p.depth) for p in out.pages] == SAMPLE_PAGES
    assert sorted(_paths(out.pages, server.base_url)) == sorted(server.site.page_paths)
    assert [(f.url.removeprefix(server.base_url), f.reason) for f in out.failures] == [
        (MISSING, DropReason.CRAWL_HTTP_4XX)]
    # the off-site footer link (https://example.com/about) is never followed with same_host
    assert all(r.url.startswith(server.base_url) for r in out.results)
    assert out.counters == {Counter.PAGES_FETCHED.value: 25, DropReason.CRAWL_HTTP_4XX.value: 1}


def test_crawl_depth_zero_is_seeds_only_and_depth_one_is_their_links(server):
    only = crawl(server.seed_urls, SETTINGS, max_depth=0, max_pages=1000).results
    assert [(type(r), r.url) for r in only] == [(Page, server.url("/index.html"))]
    level1 = crawl(server.seed_urls, SETTINGS, max_depth=1, max_pages=1000).results
    assert _paths(level1, server.base_url) == [
        "/index.html", MISSING] + [f"/pages/p{i:02d}.html" for i in range(5)]


def test_crawl_respects_max_pages_deterministically(server):
    first = crawl(server.seed_urls, SETTINGS, max_depth=3, max_pages=4, concurrency=4).results
    again = crawl(server.seed_urls, SETTINGS, max_depth=3, max_pages=4, concurrency=1).results
    assert _paths(first, server.base_url) == _paths(again, server.base_url) == [
        "/index.html", MISSING, "/pages/p00.html", "/pages/p01.html"]  # levels in sorted URL order


def test_max_pages_cut_is_the_same_on_two_worker_processes(server):
    # 8 = the index, its 6 links and the smallest unseen URL of depth 2 (p05): a cut inside a level
    one = crawl(server.seed_urls, SETTINGS, max_depth=3, max_pages=8)
    two = crawl(server.seed_urls, SETTINGS, TWO_WORKERS, max_depth=3, max_pages=8)
    outcome = lambda out: [(r.url, getattr(r, "depth", None), getattr(r, "reason", None)) for r in out.results]  # noqa: E731
    assert outcome(one) == outcome(two)
    assert [(p.url.removeprefix(server.base_url), p.depth) for p in one.pages] == SAMPLE_PAGES[:7]
    assert one.counters == two.counters == {Counter.PAGES_FETCHED.value: 7, DropReason.CRAWL_HTTP_4XX.value: 1}


def test_a_link_found_at_two_levels_and_by_two_pages_is_fetched_once(scripted_server):
    base, routes, hits = scripted_server
    page = lambda body: (200, {"Content-Type": "text/html"}, body.encode())  # noqa: E731
    routes["/"] = page('<a href="/a.html">a</a><a href="/b.html">b</a>')
    routes["/a.html"] = page('<a href="/b.html">b again</a><a href="/c.html">c</a><a href="/">home</a>')
    routes["/b.html"] = page('<a href="/c.html">c again</a>')
    routes["/c.html"] = page('<a href="/a.html">a</a><a href="/b.html">b</a><a href="/d.html">d</a>')
    routes["/d.html"] = page("<p>leaf</p>")
    out = crawl([base + "/", base + "/#top"], SETTINGS, max_depth=4, max_pages=100)
    assert [(p.url.removeprefix(base), p.depth) for p in out.pages] == [
        ("/", 0), ("/a.html", 1), ("/b.html", 1), ("/c.html", 2), ("/d.html", 3)]
    assert {path: n for path, n in hits.items() if path.endswith("html") or path == "/"} == {
        "/": 1, "/a.html": 1, "/b.html": 1, "/c.html": 1, "/d.html": 1}


def test_same_host_decides_whether_other_hosts_are_followed(scripted_server):
    base, routes, hits = scripted_server
    port = base.rsplit(":", 1)[1]
    html = f'<a href="http://localhost:{port}/other.html">o</a><a href="/own.html">own</a>'.encode()
    routes["/"] = (200, {"Content-Type": "text/html"}, html)
    routes["/own.html"] = (200, {"Content-Type": "text/html"}, b"<p>own</p>")
    routes["/other.html"] = (200, {"Content-Type": "text/html"}, b"<p>other</p>")
    same = crawl([base + "/"], SETTINGS, max_depth=1, max_pages=10, same_host=True).results
    assert [r.url for r in same] == [base + "/", base + "/own.html"] and "/other.html" not in hits
    anywhere = crawl([base + "/"], SETTINGS, max_depth=1, max_pages=10, same_host=False).results
    assert [r.url for r in anywhere] == [base + "/", base + "/own.html", f"http://localhost:{port}/other.html"]


def test_off_host_links_count_against_the_group_that_found_them(scripted_server):
    base, routes, hits = scripted_server
    alias = base.replace("127.0.0.1", "localhost")
    page = lambda body: (200, {"Content-Type": "text/html"}, body.encode())  # noqa: E731
    routes["/"] = page(f'<a href="{alias}/x1.html">1</a><a href="{alias}/x2.html">2</a>'
                       f'<a href="{alias}/x3.html">3</a><a href="/own.html">own</a>')
    routes["/seed.html"] = page(f'<a href="{alias}/x1.html">1</a><a href="{base}/from-alias.html">b</a>')
    for path in ("/own.html", "/x1.html", "/x2.html", "/x3.html", "/from-alias.html"):
        routes[path] = page(f"<p>{path}</p>")
    # two groups, 127.0.0.1 and localhost, three requests each; off-host links are the finder's
    out = crawl([base + "/", alias + "/seed.html"], SETTINGS, max_depth=2, max_pages=3, same_host=False)
    # 127.0.0.1: "/", then the two smallest of own.html, x1, x2, x3; localhost: seed.html, then
    # from-alias.html and x1. Each group is crawled (and deduplicated) on its own: x1 twice.
    assert [(p.url, p.depth) for p in out.pages] == [
        (base + "/", 0), (base + "/from-alias.html", 1), (base + "/own.html", 1),
        (alias + "/seed.html", 0), (alias + "/x1.html", 1), (alias + "/x1.html", 1)]
    assert out.failures == [] and hits["/x1.html"] == 2 and "/x2.html" not in hits


def test_crawl_failure_reasons(scripted_server):
    base, routes, _ = scripted_server
    routes["/"] = (200, {"Content-Type": "text/html"},
                   b'<a href="/img.jpg">i</a><a href="/boom">b</a><a href="/big.html">g</a>')
    routes["/img.jpg"] = (200, {"Content-Type": "image/jpeg"}, b"\xff\xd8\xff")
    routes["/boom"] = (500, {}, b"")
    routes["/big.html"] = (200, {"Content-Type": "text/html"}, b"x" * 2000)
    results = crawl([base + "/"], SETTINGS, max_depth=1, max_pages=10, max_page_bytes=1000).results
    assert [(r.url.removeprefix(base), getattr(r, "reason", "ok")) for r in results] == [
        ("/", "ok"), ("/big.html", DropReason.CRAWL_TOO_LARGE), ("/boom", DropReason.CRAWL_HTTP_5XX),
        ("/img.jpg", DropReason.CRAWL_NOT_HTML)]


# -- FetchPages in a TestPipeline ------------------------------------------------

def test_fetch_pages_pipeline_outputs_and_counters(server):
    cfg = spec_with(crawl_spec, max_depth=1, max_pages=100, concurrency=4)
    # the same seed twice, once un-normalised: crawled once (NormalizeSeed + GroupByHost)
    seeds = [server.url("/index.html"), server.url("/pages/../index.html#top").replace("http:", "HTTP:")]
    p = local_test_pipeline()
    pages, failures = p | beam.Create(seeds) | FetchPages(cfg, SETTINGS)
    base = server.base_url
    assert_that(pages | "PagePaths" >> beam.Map(lambda pg: (pg.url.removeprefix(base), pg.depth)),
                equal_to([("/index.html", 0)] + [(f"/pages/p{i:02d}.html", 1) for i in range(5)]),
                label="pages")
    assert_that(failures | "FailurePaths" >> beam.Map(lambda f: (f.url.removeprefix(base), f.reason.value)),
                equal_to([(MISSING, "crawl.http_4xx")]), label="failures")
    result = p.run()
    result.wait_until_finish()
    assert _counter(result, Counter.PAGES_FETCHED.value) == 6
    assert _counter(result, DropReason.CRAWL_HTTP_4XX.value) == 1


# -- canonical links and duplicate pages -------------------------------------------

def test_page_links_reads_canonical_with_base_and_rel_lists():
    html = (b'<head><base href="http://h/d/"><link rel="alternate stylesheet" href="/x.css">'
            b'<link rel="Canonical" href="../c.html#top"></head><a href="a.html">a</a>')
    found = page_links(html, "http://h/d/p.html?utm=1")
    assert found.canonical == "http://h/c.html" and found.links == ("http://h/d/a.html",)
    assert page_links(b'<link rel="canonical" href="javascript:x">', "http://h/").canonical == ""
    assert page_links(b"", "http://h/") == PageLinks()


def test_canonical_and_same_bytes_pages_are_duplicates(scripted_server):
    base, routes, _ = scripted_server
    html = lambda body, canonical="": (200, {"Content-Type": "text/html"}, (  # noqa: E731
        f'<html><head>{canonical}</head><body>{body}</body></html>').encode())
    routes["/"] = html('<a href="/a.html">a</a><a href="/amp/a.html">a2</a><a href="/b.html">b</a>'
                       '<a href="/copy.html">c</a><a href="/print/b.html">p</a>')
    routes["/a.html"] = html('<img src="/1.jpg" alt="one">')
    # an AMP copy of the article, naming its canonical URL
    routes["/amp/a.html"] = html('<img src="/1.jpg" alt="one"> <span>ad 2</span>',
                                     f'<link rel="canonical" href="{base}/a.html">')
    routes["/b.html"] = html('<img src="/2.jpg" alt="two"><a href="/only-from-b.html">deeper</a>')
    routes["/copy.html"] = routes["/b.html"]  # byte-identical copy at another URL
    # a print view naming b.html as canonical, crawled after b.html (sorted order)
    routes["/print/b.html"] = html('<img src="/2.jpg" alt="two"><a href="/only-from-print.html">x</a>',
                                   f'<link rel="canonical" href="{base}/b.html">')
    routes["/only-from-b.html"] = html("deep")
    routes["/only-from-print.html"] = html("deep too")
    results = crawl([base + "/"], SETTINGS, max_depth=2, max_pages=50).results
    got = [(r.url.removeprefix(base), getattr(r, "reason", "ok")) for r in results]
    dup = DropReason.CRAWL_DUPLICATE_PAGE
    # each level in sorted URL order: the first of equals wins
    assert got == [("/", "ok"), ("/a.html", "ok"), ("/amp/a.html", dup), ("/b.html", "ok"),
                   ("/copy.html", dup), ("/only-from-b.html", "ok"), ("/only-from-print.html", "ok"),
                   ("/print/b.html", dup)]  # a duplicate's links are followed
    details = {r.url.removeprefix(base): r.detail for r in results if isinstance(r, PageFailure)}
    assert details == {"/amp/a.html": f"canonical {base}/a.html already crawled as {base}/a.html",
                       "/copy.html": f"same bytes as {base}/b.html",
                       "/print/b.html": f"canonical {base}/b.html already crawled as {base}/b.html"}


def test_duplicates_are_decided_in_depth_order_across_levels(scripted_server):
    base, routes, _ = scripted_server
    html = lambda body, head="": (200, {"Content-Type": "text/html"}, (  # noqa: E731
        f"<html><head>{head}</head><body>{body}</body></html>").encode())
    routes["/"] = html('<a href="/z.html">z</a><a href="/v.html">v</a><a href="/m.html">m</a>')
    # depth 1: z.html links the depth-2 pages; v.html claims /b.html as its canonical
    routes["/z.html"] = html('<a href="/a-copy.html">c</a><a href="/b.html">b</a><a href="/c.html">c</a>')
    routes["/v.html"] = html("variant", f'<link rel="canonical" href="{base}/b.html">')
    routes["/m.html"] = html("<p>m</p>", f'<link rel="canonical" href="{base}/c.html">')
    routes["/a-copy.html"] = routes["/z.html"]  # depth 2, sorts before z.html, same bytes: z.html won
    routes["/b.html"] = html("<p>the canonical page, crawled after its variant</p>")
    routes["/c.html"] = html("<p>c</p>", f'<link rel="canonical" href="{base}/c.html">')
    out = crawl([base + "/"], SETTINGS, max_depth=3, max_pages=50)
    assert [(p.url.removeprefix(base), p.depth) for p in out.pages] == [("/", 0), ("/m.html", 1), ("/v.html", 1),
                                                                        ("/z.html", 1)]
    assert {f.url.removeprefix(base): f.detail for f in out.failures} == {
        "/a-copy.html": f"same bytes as {base}/z.html",
        "/b.html": f"{base}/b.html already crawled as {base}/v.html",
        "/c.html": f"{base}/c.html already crawled as {base}/m.html"}  # its own canonical: claimed by m.html
    assert out.counters[DropReason.CRAWL_DUPLICATE_PAGE.value] == 3


def test_a_canonical_claimed_first_makes_the_canonical_page_a_duplicate():
    dup = DuplicatePages(canonical=True, content=True)
    variant = Page(url="http://h/a?utm=1", html=b"variant", depth=1)
    assert dup.check(variant, "http://h/a") == ""
    assert dup.check(Page(url="http://h/a", html=b"original", depth=2), "") == (
        "http://h/a already crawled as http://h/a?utm=1")  # the variant stood for it
    assert dup.check(Page(url="http://h/self", html=b"self", depth=2), "http://h/self") == ""  # self-canonical


def test_duplicate_checks_can_be_turned_off(scripted_server):
    base, routes, _ = scripted_server
    page = (200, {"Content-Type": "text/html"}, b'<link rel="canonical" href="/"><a href="/same.html">s</a>')
    routes["/"] = page
    routes["/same.html"] = page
    both = crawl([base + "/"], SETTINGS, max_depth=1, max_pages=10, canonical=False, duplicate_content=False).results
    assert all(isinstance(r, Page) for r in both) and len(both) == 2
    only_bytes = crawl([base + "/"], SETTINGS, max_depth=1, max_pages=10, canonical=False).results
    assert [type(r) for r in only_bytes] == [Page, PageFailure] and "same bytes" in only_bytes[1].detail


# ---- bad and over-long links, deep pages, the shared parse (helper: parsers) --------------------

import pytest  # noqa: E402

from transforms.url_guard import MAX_URL_CHARS  # noqa: E402


@pytest.mark.parametrize("url", ["http://[::1", "http://[oops/x#frag", "//[x]/y", " http://[a/b#c "])
def test_normalize_url_never_raises(url):
    assert normalize_url(url) == url.strip().split("#")[0]  # as written, for fetch.bad_url to refuse
    assert normalize_url("HTTP://[::1]:80/a/../b#f") == "http://[::1]/b"


@pytest.mark.parametrize("href", ["http://[::1", "http://[oops/x.html", "//[x]/y.html", "http://h:99999/x",
                                  "https://h:abc/"])
def test_a_bad_link_is_skipped_and_the_others_kept(href):
    html = f'<a href="{href}">bad</a><a href="/ok.html">ok</a><link rel="canonical" href="{href}">'.encode()
    found = page_links(html, "http://h/")
    assert found.links == ("http://h/ok.html",) and found.canonical == ""


@pytest.mark.parametrize("base_href", ["http://[::1", "//[x]/", "http://h:abc/"])
def test_a_bad_base_href_falls_back_to_the_page_url(base_href):
    html = f'<base href="{base_href}"><a href="x.html">x</a>'.encode()
    assert extract_links(html, "http://h/dir/page.html") == ["http://h/dir/x.html"]


def test_a_page_url_that_does_not_parse_keeps_its_absolute_links():
    assert extract_links(b'<a href="rel.html">r</a><a href="http://o/abs.html">a</a>', "http://[oops/") == [
        "http://o/abs.html"]


def test_over_long_links_are_skipped_never_cut():
    fits = "/" + "x" * (MAX_URL_CHARS - len("http://h/"))
    html = f'<a href="{fits}">fits</a><a href="{fits}y">long</a><a href="{fits}#frag">fits once normalised</a>'.encode()
    assert extract_links(html, "http://h/") == ["http://h" + fits]
    assert page_links(html, "http://h/", max_chars=100).links == ()


@pytest.mark.parametrize("depth", [300, 3000, 100_000])
def test_links_after_thousands_of_unclosed_tags_are_found(depth):
    html = ("<html><body>" + "<div><font>" * (depth // 2) + "".join(f'<a href="/{i}">{i}</a>' for i in range(5))
            + '<link rel="canonical" href="/canon">').encode()
    found = page_links(html, "http://h/")
    assert found.links == tuple(f"http://h/{i}" for i in range(5)) and found.canonical == "http://h/canon"


def test_links_are_decoded_as_extraction_decodes_the_page():
    html = '<a href="/café.html">c</a>'.encode("latin-1")
    # canonical links carry non-ASCII as UTF-8 percent-encoding, as requests sends them (transforms/url_canonical.py)
    assert extract_links(html, "http://h/", "text/html; charset=iso-8859-1") == ["http://h/caf%C3%A9.html"]
    assert extract_links('<meta charset="windows-1251"><a href="/дом">d</a>'.encode("cp1251"), "http://h/") == [
        "http://h/%D0%B4%D0%BE%D0%BC"]
