"""The hostile-server suite: each misbehaviour ends in its exact reason code, in bounded time.

``CASES``: misbehaving responses of one shared server (paths of hostile_routes.routes).
``SITE_CASES``: what a site says about itself (robots.txt, tdmrep.json, and the Retry-After
that marks a host too slow), each on a fresh server: those answers are per origin.
Both also run as one FetchImages pipeline each, which must account for every pair.

The SSRF guard stays ON here: only the test server's own host:port is exempt,
so redirects to every refused address form (hostile_routes.SSRF_REDIRECTS) end
in ``fetch.private_address`` before any connection is attempted. No traffic may
leave loopback even when a guard is switched off (tests/mutation): every test
here runs with socket connects to non-loopback addresses refused and recorded.
"""

import contextlib
import socket
import time

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from filters.image_rules import image_verdict
from pipeline.config import CurateConfig
from pipeline.records import AltPair, Rejection
from pipeline.specs import image_spec, resize_spec
from pipeline.specs import client_settings, fetch_spec
from tests.conftest import counter, local_test_pipeline
from tests.default_specs import spec_with
from tests.transforms.hostile_server import (BAD_LENGTHS, BAD_REDIRECTS, DISALLOW_OK, HOLD_S, RGBA16_SIZE,
                                            SSRF_REDIRECTS, CountingListener, HostileServer, forbid_off_loopback)
from transforms.fetch import SVG_TYPES, FetchImages, fetch_and_resize
from transforms.http_client import ClientSettings, HttpClient
from transforms.resize import ResizeSpec

SPEC = spec_with(resize_spec, image_size=64, mode="border", max_pixels=50_000_000)


def _settings(exempt: str, **kw) -> ClientSettings:
    base = dict(connect_timeout_s=1.0, read_timeout_s=1.0, total_timeout_s=3.0, max_bytes=2_000_000,
                max_redirects=5, retries=1, guard_exempt=(exempt,), user_agent="wit-curator-test")
    base.update(kw)
    return spec_with(client_settings, **base)


# path, expected outcome ("ok" = a resized image), wall-time bound in seconds
CASES = [
    ("/ok.jpg", "ok", 2),
    ("/slowloris", "fetch.timeout", 6),
    ("/slow-body.jpg", "fetch.timeout", 6),
    ("/endless.jpg", "fetch.too_large", 6),
    ("/lying-length.jpg", "fetch.incomplete_body", 4),
    ("/gzip-bomb.jpg", "fetch.too_large", 4),
    ("/png-bomb.png", "image.too_many_pixels", 2),
    ("/huge-16k.png", "image.too_many_pixels", 2),
    ("/truncated.jpg", "image.undecodable", 2),
    ("/html-as-jpeg.jpg", "fetch.not_image", 2),
    ("/polyglot.jpg", "image.undecodable", 2),
    ("/zero-byte.jpg", "fetch.not_image", 2),
    ("/loop", "fetch.redirect_loop", 2),
    ("/chain0", "fetch.too_many_redirects", 3),
    ("/rate-limited.jpg", "ok", 4),
    ("/unavailable.jpg", "ok", 3),
    ("/private/secret.jpg", "fetch.robots_disallowed", 2),
    ("/noai.jpg", "fetch.noai", 2),
    ("/noimageai.jpg", "fetch.noai", 2),
    ("/noai-for-otherbot.jpg", "ok", 2),
    ("/noai-held.jpg", "fetch.noai", 2),  # decided from the headers: the body is held back 3 s
    ("/huge-headers.jpg", "fetch.bad_response", 4),
    ("/reset.jpg", "fetch.incomplete_body", 4),
    ("/http10.jpg", "ok", 2),
    ("/wrong-charset.jpg", "ok", 2),
    ("/image.svg", "fetch.svg_disabled", 2),  # Content-Type SVG, resize.svg off: body not read
    ("/tracker.gif", "image.too_small", 2),
    ("/cmyk.jpg", "ok", 2),
    ("/animated.gif", "ok", 2),
    ("/not-found.jpg", "fetch.http_4xx", 2),
    # every refused address form, on a redirect hop (hostile_routes.SSRF_REDIRECTS)
    *[(path, "fetch.private_address", 2) for path in SSRF_REDIRECTS],
    # a Location that is no URL we fetch: a rejection, never a ValueError
    *[(path, "fetch.bad_url", 2) for path in BAD_REDIRECTS],
    # Content-Length that is no ASCII number ("²", "１２", "-1", ...): read as undeclared, body to the close
    *[(path, "ok", 2) for path in BAD_LENGTHS],
    # "+100": int() takes it (urllib3 reads 100 bytes of the JPEG), declared_length does not: a cut image
    ("/length-plus.jpg", "image.undecodable", 2),
    ("/length-underscore.jpg", "image.undecodable", 2),
    ("/length-conflicting.jpg", "fetch.bad_response", 2),  # urllib3's InvalidHeader: not retried as a connect error
    ("/length-superscript-endless.jpg", "fetch.too_large", 3),  # "²" does not lift the byte cap
    ("/length-huge.jpg", "fetch.too_large", 2),  # 40 digits: refused before the body, no huge int
    ("/length-over-cap.jpg", "fetch.too_large", 2),
    ("/length-repeated-same.jpg", "ok", 2),  # "N, N" is one length (RFC 9110 §8.6)
    # Retry-After that is no delay we read: the usual backoff, then the retry succeeds
    ("/retry-after-superscript.jpg", "ok", 3),
    ("/retry-after-garbage.jpg", "ok", 3),
    ("/retry-after-negative.jpg", "ok", 3),
    ("/retry-after-bad-date.jpg", "ok", 3),
    ("/retry-after-superscript-always.jpg", "fetch.http_5xx", 3),
    # TDMRep header, decided before the body
    ("/tdm-reserved.jpg", "fetch.tdm_reserved", 2),
    ("/tdm-reserved-policy.jpg", "fetch.tdm_reserved", 2),
    ("/tdm-not-reserved.jpg", "ok", 2),
    ("/tdm-superscript.jpg", "ok", 2),  # "¹" is not 1
    # X-Robots-Tag scoped to our product token ("wit-curator-test")
    ("/noai-for-us.jpg", "fetch.noai", 2),
    ("/noai-for-us-uppercase.jpg", "fetch.noai", 2),
    ("/noai-in-second-header.jpg", "fetch.noai", 2),  # otherbot's group ends with its header
    ("/noai-for-otherbot-then-us-index.jpg", "ok", 2),
    ("/rgba16.png", "ok", 3),  # 16-bit RGBA: flattened after the downscale (see test_rgba16_near_the_pixel_cap)
]


# What a site says about itself, each on a fresh server (robots.txt and tdmrep.json answers are
# per origin): (id, robots.txt, tdmrep.json, path, expected, bound). robots/tdmrep: the body
# served with 200, a key of hostile_routes.SITE_FILE_ANSWERS (how it is served or fails), or
# None (the default robots.txt, Disallow: /private/; no tdmrep.json: 404).
_BIG_TAIL = b"# " + b"x" * 1000 + b"\n"  # 1 KB comment lines
_OVER_500K = 600  # KB of padding: past RFC 9309's 500 KiB
SITE_CASES = [
    # RFC 9309 §2.3.1: 5xx, 429 and unreachable = complete disallow; 4xx = no robots.txt
    ("robots-503", "503", None, "/ok.jpg", "fetch.robots_unavailable", 2),
    ("robots-500", "500", None, "/ok.jpg", "fetch.robots_unavailable", 2),
    ("robots-429", "429", None, "/ok.jpg", "fetch.robots_unavailable", 2),
    ("robots-reset", "reset", None, "/ok.jpg", "fetch.robots_unavailable", 2),
    ("robots-silent", "silent", None, "/ok.jpg", "fetch.robots_unavailable", 4),  # read timeout 1 s
    ("robots-garbage-status", "garbage-status", None, "/ok.jpg", "fetch.robots_unavailable", 2),
    ("robots-not-http", "not-http", None, "/ok.jpg", "fetch.robots_unavailable", 2),
    ("robots-redirect-private", "redirect-private", None, "/ok.jpg", "fetch.robots_unavailable", 2),
    ("robots-redirect-bad-ipv6", "redirect-bad-ipv6", None, "/ok.jpg", "fetch.robots_unavailable", 2),
    ("robots-404", "404", None, "/private/secret.jpg", "ok", 2),
    ("robots-403", "403", None, "/private/secret.jpg", "ok", 2),
    ("robots-401", "401", None, "/private/secret.jpg", "ok", 2),
    ("robots-redirect-loop", "redirect-loop", None, "/private/secret.jpg", "ok", 2),
    ("robots-redirect-chain", "redirect-chain", None, "/private/secret.jpg", "ok", 2),  # too many hops: none
    ("robots-redirect-followed", "redirect-elsewhere", None, "/ok.jpg", "fetch.robots_disallowed", 2),
    # parsing (Protego, RFC 9309)
    ("robots-bom", b"\xef\xbb\xbf" + DISALLOW_OK, None, "/ok.jpg", "fetch.robots_disallowed", 2),
    ("robots-bom-crlf", b"\xef\xbb\xbfUser-agent: *\r\nDisallow: /ok.jpg\r\n", None, "/ok.jpg",
     "fetch.robots_disallowed", 2),
    ("robots-wildcard-dollar", b"User-agent: *\nDisallow: /*.jpg$\n", None, "/ok.jpg", "fetch.robots_disallowed", 2),
    ("robots-dollar-not-at-end", b"User-agent: *\nDisallow: /*.jpg$\n", None, "/ok.jpg?x=1", "ok", 2),
    ("robots-wildcard-middle", b"User-agent: *\nDisallow: /*secret\n", None, "/private/secret.jpg",
     "fetch.robots_disallowed", 2),
    ("robots-longest-allow", b"User-agent: *\nDisallow: /private/\nAllow: /private/secret.jpg\n", None,
     "/private/secret.jpg", "ok", 2),
    ("robots-longest-disallow", b"User-agent: *\nAllow: /private/\nDisallow: /private/secret\n", None,
     "/private/secret.jpg", "fetch.robots_disallowed", 2),
    ("robots-tie-allow-wins", b"User-agent: *\nDisallow: /ok.jpg\nAllow: /ok.jpg\n", None, "/ok.jpg", "ok", 2),
    ("robots-over-500k", DISALLOW_OK + _BIG_TAIL * _OVER_500K, None, "/ok.jpg", "fetch.robots_disallowed", 3),
    ("robots-over-500k-rule-past-it", b"User-agent: *\n" + _BIG_TAIL * _OVER_500K + b"Disallow: /ok.jpg\n", None,
     "/ok.jpg", "ok", 3),  # only the first 500 KiB are read (the RFC's minimum)
    ("robots-gzip-inflating", "gzip-inflating", None, "/ok.jpg", "fetch.robots_disallowed", 3),
    ("robots-our-group", b"User-agent: otherbot\nDisallow: /\n\nUser-agent: wit-curator-test\nDisallow: /ok.jpg\n",
     None, "/ok.jpg", "fetch.robots_disallowed", 2),
    ("robots-our-group-versioned", b"User-agent: WIT-Curator-Test/2.0\nDisallow: /\n", None, "/ok.jpg",
     "fetch.robots_disallowed", 2),
    ("robots-prefix-is-not-us", b"User-agent: wit\nDisallow: /\n", None, "/ok.jpg", "ok", 2),
    ("robots-other-bot-only", b"User-agent: otherbot\nDisallow: /\n", None, "/ok.jpg", "ok", 2),
    # Crawl-delay: a huge one is refused at once, one that is no ASCII number ignored
    ("crawl-delay-100000", b"User-agent: *\nCrawl-delay: 100000\n", None, "/ok.jpg", "fetch.host_too_slow", 2),
    ("crawl-delay-30-digits", b"User-agent: *\nCrawl-delay: " + b"9" * 30 + b"\n", None, "/ok.jpg",
     "fetch.host_too_slow", 2),
    ("crawl-delay-100000-ours", b"User-agent: wit-curator-test\nCrawl-delay: 100000\n", None, "/ok.jpg",
     "fetch.host_too_slow", 2),
    ("crawl-delay-100000-other-bot", b"User-agent: otherbot\nCrawl-delay: 100000\n", None, "/ok.jpg", "ok", 2),
    ("crawl-delay-superscript", "User-agent: *\nCrawl-delay: ²\n".encode(), None, "/ok.jpg", "ok", 2),
    ("crawl-delay-superscript-group-kept", "User-agent: *\nCrawl-delay: ²\nDisallow: /private/\n".encode(), None,
     "/private/secret.jpg", "fetch.robots_disallowed", 2),
    ("crawl-delay-arabic-indic", "User-agent: *\nCrawl-delay: ١٢٣\n".encode(), None, "/ok.jpg", "ok", 2),
    ("crawl-delay-1e400", b"User-agent: *\nCrawl-delay: 1e400\n", None, "/ok.jpg", "ok", 2),
    ("crawl-delay-nan", b"User-agent: *\nCrawl-delay: nan\n", None, "/ok.jpg", "ok", 2),
    # Retry-After past fetch.max_host_delay_s: no wait, the host is too slow
    ("retry-after-100000", None, None, "/retry-after-huge.jpg", "fetch.host_too_slow", 2),
    ("retry-after-30-digits", None, None, "/retry-after-many-digits.jpg", "fetch.host_too_slow", 2),
    ("retry-after-next-year", None, None, "/retry-after-next-year.jpg", "fetch.host_too_slow", 2),
    # TDMRep /.well-known/tdmrep.json: the first matching rule decides
    ("tdmrep-reserved", None, b'[{"location": "/ok.jpg", "tdm-reservation": 1}]', "/ok.jpg", "fetch.tdm_reserved", 2),
    ("tdmrep-wildcard", None, b'[{"location": "/*.jpg$", "tdm-reservation": 1, "tdm-policy": "https://x/p"}]',
     "/ok.jpg", "fetch.tdm_reserved", 2),
    ("tdmrep-string-one", None, b'[{"location": "/", "tdm-reservation": "1"}]', "/ok.jpg", "fetch.tdm_reserved", 2),
    ("tdmrep-bom", None, b'\xef\xbb\xbf[{"location": "/", "tdm-reservation": 1}]', "/ok.jpg",
     "fetch.tdm_reserved", 2),
    ("tdmrep-first-match-decides", None,
     b'[{"location": "/ok", "tdm-reservation": 0}, {"location": "/", "tdm-reservation": 1}]', "/ok.jpg", "ok", 2),
    ("tdmrep-other-path", None, b'[{"location": "/private/", "tdm-reservation": 1}]', "/ok.jpg", "ok", 2),
    ("tdmrep-bool-is-no-reservation", None, b'[{"location": "/", "tdm-reservation": true}]', "/ok.jpg", "ok", 2),
    ("tdmrep-not-json", None, b'[{"location": "/", ', "/ok.jpg", "ok", 2),
    ("tdmrep-object", None, b'{"location": "/", "tdm-reservation": 1}', "/ok.jpg", "ok", 2),
    ("tdmrep-503", None, "503", "/ok.jpg", "ok", 2),
    ("tdmrep-silent", None, "silent", "/ok.jpg", "ok", 4),
]


@pytest.fixture(autouse=True)
def off_loopback_connects(monkeypatch):
    """Every socket connect that would leave loopback is refused and recorded: with a guard switched
    off by the mutation harness, a redirect to 10.0.0.1 must fail here, not go out."""
    return forbid_off_loopback(monkeypatch)


@pytest.fixture(scope="module")
def hostile():
    with HostileServer() as server:
        yield server


def _outcome(out) -> str:
    if isinstance(out, Rejection):
        return out.reason
    verdict = image_verdict(out.original_width, out.original_height, image_spec(CurateConfig()))
    return verdict[0].value if verdict else "ok"


@pytest.mark.parametrize("path,expected,bound", CASES, ids=[c[0] for c in CASES])
def test_misbehaviour_gets_its_reason_in_bounded_time(hostile, path, expected, bound):
    client = HttpClient(_settings(hostile.exempt, refuse_types=SVG_TYPES))  # as FetchImages with resize.svg off
    pair = AltPair(key="k", page_url=hostile.base_url + "/", image_url=hostile.base_url + path,
                   caption="a red square on white")
    start = time.monotonic()
    try:
        out = fetch_and_resize(client, SPEC, pair)
    finally:
        client.close()
    elapsed = time.monotonic() - start
    detail = out.detail if isinstance(out, Rejection) else ""
    assert _outcome(out) == expected, detail
    assert elapsed < bound, f"{path} took {elapsed:.1f}s"


def _fetch_timed(client: HttpClient, url: str, spec: ResizeSpec = SPEC):
    pair = AltPair(key="k", page_url="", image_url=url, caption="a red square on white")
    start = time.monotonic()
    try:
        out = fetch_and_resize(client, spec, pair)
    finally:
        client.close()
    return out, time.monotonic() - start


@pytest.mark.parametrize("robots_txt,tdmrep_json,path,expected,bound", [c[1:] for c in SITE_CASES],
                         ids=[c[0] for c in SITE_CASES])
def test_site_file_gets_its_reason_in_bounded_time(robots_txt, tdmrep_json, path, expected, bound):
    with HostileServer(robots=robots_txt, tdmrep=tdmrep_json) as server:
        out, elapsed = _fetch_timed(HttpClient(_settings(server.exempt)), server.base_url + path)
    detail = out.detail if isinstance(out, Rejection) else ""
    assert _outcome(out) == expected, detail
    assert elapsed < bound, f"{path} took {elapsed:.1f}s"


def test_suite_covers_at_least_169_misbehaviours():
    assert len({c[0] for c in CASES if c[0] != "/ok.jpg"}) + len({c[0] for c in SITE_CASES}) >= 169
    assert len({c[0] for c in CASES}) == len(CASES) and len({c[0] for c in SITE_CASES}) == len(SITE_CASES)


def test_retry_after_past_the_bound_marks_the_host_too_slow():
    """One Retry-After: 100000 and the host's other pairs are refused at once, not after 28 hours."""
    with HostileServer() as server:
        client = HttpClient(_settings(server.exempt))
        start = time.monotonic()
        first = client.get(server.base_url + "/retry-after-huge.jpg")
        later = [client.get(server.base_url + "/ok.jpg") for _ in range(3)]
        elapsed = time.monotonic() - start
        client.close()
    assert first.failure == "host_too_slow" and "Retry-After 100000" in first.detail
    assert [r.failure for r in later] == ["host_too_slow"] * 3 and elapsed < 2
    assert server.hits.get("/ok.jpg") is None  # refused before a request


def test_crawl_delay_past_the_bound_sends_nothing_but_robots():
    with HostileServer(robots=b"User-agent: *\nCrawl-delay: 100000\n") as server:
        client = HttpClient(_settings(server.exempt))
        results = [client.get(server.base_url + "/ok.jpg") for _ in range(3)]
        client.close()
    assert [r.failure for r in results] == ["host_too_slow"] * 3
    assert "Crawl-delay 100000" in results[0].detail
    assert server.hits == {"/robots.txt": 1}  # refused before tdmrep.json or the image is asked for


@pytest.mark.parametrize("max_pixels,expected", [(RGBA16_SIZE[0] * RGBA16_SIZE[1], "ok"),
                                                 (RGBA16_SIZE[0] * RGBA16_SIZE[1] - 1, "image.too_many_pixels")],
                         ids=["at-the-cap", "one-pixel-over"])
def test_rgba16_near_the_pixel_cap(hostile, max_pixels, expected):
    """A real 16-bit RGBA PNG at resize.max_pixels: decoded and flattened after the downscale,
    one pixel over it refused from the header. (Kept small for CI: 1.2 M pixels.)"""
    spec = spec_with(resize_spec, image_size=64, mode="border", max_pixels=max_pixels)
    out, elapsed = _fetch_timed(HttpClient(_settings(hostile.exempt)), hostile.base_url + "/rgba16.png", spec)
    assert _outcome(out) == expected, getattr(out, "detail", "")
    assert elapsed < 3
    if expected == "ok":
        assert (out.original_width, out.original_height) == RGBA16_SIZE and (out.width, out.height) == (64, 64)


def test_retry_after_is_honoured():
    with HostileServer() as server:  # fresh: the 429 comes on the first hit only
        client = HttpClient(_settings(server.exempt))
        start = time.monotonic()
        result = client.get(server.base_url + "/rate-limited.jpg")
        assert result.ok and time.monotonic() - start >= 0.7  # Retry-After: 1, with ±25 % jitter
        assert server.hits["/rate-limited.jpg"] == 2


def test_crawl_delay_spaces_requests():
    with HostileServer(robots=b"User-agent: *\nCrawl-delay: 1\n") as server:
        client = HttpClient(_settings(server.exempt))
        start = time.monotonic()
        for _ in range(3):
            assert client.get(server.base_url + "/ok.jpg").ok
        assert time.monotonic() - start >= 2.0  # three starts, 1 s apart
        assert server.hits["/robots.txt"] == 1


def test_noai_is_decided_before_the_body(hostile):
    """The server holds the body back HOLD_S after the headers: a client that read the body
    first could not answer sooner, and the server sees the connection closed unread."""
    client = HttpClient(_settings(hostile.exempt, read_timeout_s=HOLD_S + 1, total_timeout_s=HOLD_S + 2))
    start = time.monotonic()
    result = client.get(hostile.base_url + "/noai-held.jpg", check_noai=True)
    elapsed = time.monotonic() - start
    client.close()
    assert (result.ok, result.failure) == (False, "noai") and elapsed < HOLD_S / 3, elapsed
    deadline = time.monotonic() + HOLD_S
    while "/noai-held.jpg" not in hostile.events and time.monotonic() < deadline:
        time.sleep(0.02)
    assert hostile.events.get("/noai-held.jpg") == "closed before the body"


# Redirect targets that spell loopback without being the exempt 127.0.0.1:PORT of the hostile server.
_LISTENER_SPELLINGS = ("http://localhost:{port}/x.jpg", "http://2130706433:{port}/x.jpg", "http://0x7f.1:{port}/x.jpg",
                       "http://0177.0.0.1:{port}/x.jpg", "http://127.1:{port}/x.jpg", "http://0.0.0.0:{port}/x.jpg",
                       "http://[::ffff:127.0.0.1]:{port}/x.jpg", "http://127.0.0.1:{port}/x.jpg")


def test_guard_never_connects_to_refused_addresses(off_loopback_connects):
    """Real connections observed: a listener counts what reaches it; nothing may."""
    with HostileServer() as server, CountingListener() as listener:
        client = HttpClient(_settings(server.exempt))
        for n, spelling in enumerate(_LISTENER_SPELLINGS):
            server.redirect(f"/to-listener-{n}", spelling.format(port=listener.port))
            result = client.get(server.base_url + f"/to-listener-{n}")
            assert result.failure == "private_address", (spelling, result.detail)
        for path in ("/to-private", "/to-metadata", "/to-shared-space", "/to-6to4-loopback"):
            assert client.get(server.base_url + path).failure == "private_address", path
        client.close()
        assert listener.settle() == (0, 0)  # no connection accepted, not a byte
    assert off_loopback_connects == []


def test_dns_failure_is_classified(monkeypatch):
    def fail(*_a, **_k):
        raise socket.gaierror(-2, "Name or service not known")
    monkeypatch.setattr(socket, "getaddrinfo", fail)
    client = HttpClient(spec_with(client_settings, retries=0))
    assert client.get("http://no-such-host.invalid/x.jpg").failure == "dns"


def test_tls_failure_is_classified(hostile):
    # robots.txt off: its own TLS failure would read as robots_unavailable (RFC 9309: unreachable)
    client = HttpClient(_settings(hostile.exempt, retries=0, respect_robots=False))
    assert client.get(f"https://127.0.0.1:{hostile.port}/ok.jpg").failure == "tls"  # TLS to a plain-HTTP port


def test_pipeline_accounts_for_every_misbehaviour(hostile):
    pairs = [AltPair(key=f"{i:04x}", page_url=hostile.base_url + "/", image_url=hostile.base_url + path,
                     caption="a red square on white") for i, (path, _e, _b) in enumerate(CASES)]
    p = local_test_pipeline()
    images, rejected = (p | beam.Create(pairs)
                        | FetchImages(_settings(hostile.exempt), spec_with(fetch_spec, concurrency=16, per_host=16), resize=SPEC))
    outcomes = images | "Kept" >> beam.Map(lambda im: (im.pair.key, "resized"))
    dropped = rejected | "Dropped" >> beam.Map(lambda r: (r.key, r.reason))
    expected = [(f"{i:04x}", "resized" if e in ("ok", "image.too_small") else e) for i, (_p, e, _b) in enumerate(CASES)]
    assert_that((outcomes, dropped) | beam.Flatten(), equal_to(expected))
    start = time.monotonic()
    result = p.run()
    result.wait_until_finish()
    assert time.monotonic() - start < 30
    assert counter(result, "images_fetched") == sum(1 for _k, o in expected if o == "resized")


def test_pipeline_accounts_for_every_site_file():
    """SITE_CASES in one FetchImages run, each on its own server (its own host): every pair ends
    in its reason, none lost, in bounded time."""
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(HostileServer(robots=c[1], tdmrep=c[2])) for c in SITE_CASES]
        pairs = [AltPair(key=f"{i:04x}", page_url="", image_url=server.base_url + case[3],
                         caption="a red square on white") for i, (server, case) in enumerate(zip(servers, SITE_CASES))]
        settings = _settings(servers[0].exempt, guard_exempt=tuple(s.exempt for s in servers))
        p = local_test_pipeline()
        images, rejected = (p | beam.Create(pairs) | FetchImages(settings, spec_with(fetch_spec, concurrency=16, per_host=4), resize=SPEC))
        outcomes = images | "Kept" >> beam.Map(lambda im: (im.pair.key, "ok"))
        dropped = rejected | "Dropped" >> beam.Map(lambda r: (r.key, r.reason))
        expected = [(f"{i:04x}", c[4]) for i, c in enumerate(SITE_CASES)]
        assert_that((outcomes, dropped) | beam.Flatten(), equal_to(expected))
        start = time.monotonic()
        result = p.run()
        result.wait_until_finish()
        assert time.monotonic() - start < 30
        assert counter(result, "images_fetched") == sum(1 for c in SITE_CASES if c[4] == "ok")
