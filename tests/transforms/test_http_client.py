import io
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from pipeline.records import AltPair, DropReason, FetchedImage, PageFailure, Rejection
from pipeline.specs import client_settings
from tests.default_specs import spec_with
from transforms import http_client as hc
from transforms import robots
from tests.transforms.crawl_run import crawl
from transforms.fetch import fetch_image, sniff_image_type
from transforms.http_client import (HttpClient, declared_length, is_blocked_address, noai_directive, parse_retry_after)


def _jpeg():
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), (1, 2, 3)).save(buf, format="JPEG")
    return buf.getvalue()


JPEG = _jpeg()


def _client(**kw):
    base = dict(allow_private_networks=True, retries=1, connect_timeout_s=2, read_timeout_s=2, total_timeout_s=5)
    base.update(kw)
    return HttpClient(spec_with(client_settings, **base))


@pytest.mark.parametrize("addr,blocked", [
    ("127.0.0.1", True), ("10.1.2.3", True), ("192.168.0.1", True), ("169.254.169.254", True),
    ("::1", True), ("224.0.0.1", True), ("0.0.0.0", True), ("::ffff:127.0.0.1", True),
    ("93.184.216.34", False), ("2606:4700::1111", False),
])
def test_ssrf_address_classes(addr, blocked):
    assert is_blocked_address(addr) is blocked


@pytest.mark.parametrize("value,expected", [
    ("noai", "noai"), ("noindex, noimageai", "noimageai"), ("NoAI", "noai"),
    ("googlebot: noai", None),  # scoped to another crawler (it was read as ours before)
    ("noindex, nofollow", None), ("", None),
])
def test_noai_directive(value, expected):
    assert noai_directive(value) == expected


@pytest.mark.parametrize("data,mime", [
    (JPEG, "image/jpeg"), (b"\x89PNG\r\n\x1a\n....", "image/png"), (b"GIF89a...", "image/gif"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"), (b"<html>", None), (b"", None),
])
def test_sniff(data, mime):
    assert sniff_image_type(data) == mime


def test_guard_refuses_loopback_by_default(scripted_server):
    base, routes, hits = scripted_server
    routes["/a.jpg"] = (200, {"Content-Type": "image/jpeg"}, JPEG)
    result = HttpClient(spec_with(client_settings)).get(base + "/a.jpg")
    assert (result.ok, result.failure) == (False, hc.PRIVATE)
    assert hits.get("/a.jpg") is None  # refused before any request was sent


def test_redirect_hops_are_rechecked(scripted_server):
    base, routes, _ = scripted_server
    routes["/r"] = (302, {"Location": "/final.jpg"}, b"")
    routes["/final.jpg"] = (200, {"Content-Type": "image/jpeg"}, JPEG)
    ok = _client().get(base + "/r")
    assert ok.ok and ok.final_url.endswith("/final.jpg") and ok.data == JPEG
    routes["/loop"] = (302, {"Location": "/loop"}, b"")
    assert _client().get(base + "/loop").failure == hc.REDIRECT_LOOP
    for i in range(8):
        routes[f"/c{i}"] = (302, {"Location": f"/c{i + 1}"}, b"")
    assert _client(max_redirects=3).get(base + "/c0").failure == hc.TOO_MANY_REDIRECTS


def test_noai_header_stops_before_body(scripted_server):
    base, routes, _ = scripted_server
    routes["/n.jpg"] = (200, {"Content-Type": "image/jpeg", "X-Robots-Tag": "noai"}, JPEG)
    assert _client().get(base + "/n.jpg", check_noai=True).failure == hc.NOAI
    assert _client().get(base + "/n.jpg").ok  # pages are not images: no noai check


def test_robots_is_fetched_once_and_honoured(scripted_server):
    base, routes, hits = scripted_server
    routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n")
    routes["/private/x.jpg"] = (200, {"Content-Type": "image/jpeg"}, JPEG)
    routes["/ok.jpg"] = (200, {"Content-Type": "image/jpeg"}, JPEG)
    client = _client()
    assert client.get(base + "/private/x.jpg").failure == hc.ROBOTS
    assert client.get(base + "/ok.jpg").ok
    assert hits["/robots.txt"] == 1 and "/private/x.jpg" not in hits


def test_byte_cap_from_header_and_from_counting(scripted_server):
    base, routes, _ = scripted_server
    routes["/big"] = (200, {"Content-Type": "image/jpeg"}, b"\xff" * 5000)
    routes["/liar"] = (200, {"Content-Type": "image/jpeg", "Connection": "close"}, b"\xff" * 5000)
    assert _client(max_bytes=1000).get(base + "/big").failure == hc.TOO_LARGE


def test_retry_on_5xx_then_success(scripted_server):
    base, routes, hits = scripted_server
    routes["/flaky"] = lambda n: (503, {"Retry-After": "0"}, b"") if n == 1 else (200, {}, JPEG)
    start = time.monotonic()
    assert _client().get(base + "/flaky").ok
    assert hits["/flaky"] == 2 and time.monotonic() - start < 3


@pytest.mark.parametrize("route,reason", [
    ((404, {}, b"nope"), DropReason.FETCH_HTTP_4XX),
    ((500, {}, b"err"), DropReason.FETCH_HTTP_5XX),
    ((200, {"Content-Type": "image/jpeg"}, b"<html>not an image</html>"), DropReason.FETCH_NOT_IMAGE),
    ((200, {"Content-Type": "image/jpeg"}, b""), DropReason.FETCH_NOT_IMAGE),
])
def test_fetch_image_reasons(scripted_server, route, reason):
    base, routes, _ = scripted_server
    routes["/x.jpg"] = route
    pair = AltPair(key="k", page_url=base + "/", image_url=base + "/x.jpg", caption="a b c d")
    out = fetch_image(_client(retries=0), pair, svg=False)
    assert isinstance(out, Rejection) and out.reason == reason.value and out.key == "k"


def test_fetch_image_ok(scripted_server):
    base, routes, _ = scripted_server
    routes["/x.jpg"] = (200, {"Content-Type": "application/octet-stream"}, JPEG)
    pair = AltPair(key="k", page_url=base + "/", image_url=base + "/x.jpg", caption="a b c d")
    out = fetch_image(_client(), pair, svg=False)
    assert isinstance(out, FetchedImage) and out.mime == "image/jpeg" and out.data == JPEG


def test_connection_refused_is_classified():
    pair = AltPair(key="k", page_url="p", image_url="http://127.0.0.1:9/x.jpg", caption="a b c d")
    out = fetch_image(_client(retries=0, respect_robots=False), pair, svg=False)
    assert out.reason == DropReason.FETCH_CONNECT.value
    # With robots.txt respected, the unreachable robots.txt decides first (RFC 9309: complete disallow).
    out = fetch_image(_client(retries=0), pair, svg=False)
    assert out.reason == DropReason.FETCH_ROBOTS_UNAVAILABLE.value and "connect" in out.detail


def test_environment_proxy_is_used_and_no_proxy_bypasses_it(scripted_server, monkeypatch):
    base, routes, hits = scripted_server
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    # The scripted server stands in for a proxy: it sees the absolute URL in the request line.
    routes["http://images.test/cat.jpg"] = (200, {"Content-Type": "image/jpeg"}, JPEG)
    monkeypatch.setenv("http_proxy", base)
    client = _client()
    result = client.get("http://images.test/cat.jpg")
    assert (result.ok, result.data) == (True, JPEG)
    assert hits["http://images.test/cat.jpg"] == 1

    # NO_PROXY: straight to the origin, even with a proxy that does not answer.
    routes["/direct.jpg"] = (200, {"Content-Type": "image/jpeg"}, JPEG)
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    assert _client().get(base + "/direct.jpg").ok
    assert hits["/direct.jpg"] == 1


# -- AI opt-outs in headers, bounded waits, numbers from headers (issue 14) ---------------


class _MultiHeaders(list):
    """(name, value) pairs for the scripted server, a name possibly repeated."""

    def items(self):
        return list(self)

    def __contains__(self, name):
        return any(k == name for k, _ in self)


# X-Robots-Tag value(s), our product token, the directive that applies to us
XRT_CASES = [
    ("noai", "wit-curator", "noai"),
    ("noimageai", "wit-curator", "noimageai"),
    ("otherbot: noai", "wit-curator", None),
    ("wit-curator: noai", "wit-curator", "noai"),
    ("WIT-Curator: NoImageAI", "wit-curator", "noimageai"),
    ("otherbot: noai", "otherbot", "noai"),
    ("otherbot: noindex, noai", "wit-curator", None),  # the group runs to the next "name:"
    ("noai, otherbot: noindex", "wit-curator", "noai"),
    ("otherbot: noai, wit-curator: noindex", "wit-curator", None),
    ("otherbot: noindex, wit-curator: noimageai", "wit-curator", "noimageai"),
    ("max-snippet: 20, noai", "wit-curator", "noai"),  # a directive with a value is not a bot name
    ("max-image-preview: large, max-video-preview: -1, noimageai", "wit-curator", "noimageai"),
    ("unavailable_after: 25 Jun 2010 15:00:00 PST, noai", "wit-curator", "noai"),
    ("googlebot: unavailable_after: 25 Jun 2010 15:00:00 PST, noai", "wit-curator", None),
    ("noindex; noai", "wit-curator", "noai"),
    ("noai-please, ainoai, noai:", "wit-curator", None),
    (["otherbot: noindex", "noai"], "wit-curator", "noai"),  # two headers: the group ends with its header
    (["otherbot: noai", "wit-curator: nofollow"], "wit-curator", None),
    ([], "wit-curator", None),
]


@pytest.mark.parametrize("value,agent,expected", XRT_CASES)
def test_x_robots_tag_is_scoped_to_our_token(value, agent, expected):
    assert noai_directive(value, agent) == expected


def test_x_robots_tag_headers_sent_apart_are_read_apart(scripted_server):
    base, routes, _ = scripted_server
    routes["/two.jpg"] = (200, _MultiHeaders([("Content-Type", "image/jpeg"), ("X-Robots-Tag", "otherbot: noindex"),
                                              ("X-Robots-Tag", "noimageai")]), JPEG)
    routes["/other.jpg"] = (200, {"Content-Type": "image/jpeg", "X-Robots-Tag": "otherbot: noai"}, JPEG)
    routes["/ours.jpg"] = (200, {"Content-Type": "image/jpeg", "X-Robots-Tag": "Wit-Curator: noai"}, JPEG)
    client = _client()
    assert client.get(base + "/two.jpg", check_noai=True).failure == hc.NOAI
    assert client.get(base + "/other.jpg", check_noai=True).ok
    assert client.get(base + "/ours.jpg", check_noai=True).failure == hc.NOAI


@pytest.mark.parametrize("value,seconds", [
    ("0", 0.0), ("5", 5.0), (" 7 ", 7.0), ("100000", 100000.0), ("9" * 40, 1e9),
    ("\u00b2", None), ("\u0661", None), ("-1", None), ("1.5", None), ("5s", None), ("soon", None), ("", None),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: no wait
    ("Wed, 21 Oct 99999 07:28:00 GMT", None), ("Mon, 99 Foo 2020 99:99:99 GMT", None), ("\u00b2\u00b2, x", None),
])
def test_parse_retry_after_reads_ascii_only(value, seconds):
    assert parse_retry_after(value) == seconds


def test_parse_retry_after_reads_a_future_date():
    import email.utils

    future = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 55 <= parse_retry_after(future) <= 61


@pytest.mark.parametrize("value,length", [
    ("100", 100), (" 100 ", 100), ("100, 100", 100), ("0", 0), ("100, 200", None), ("", None),
    ("\u00b2", None), ("\u0661\u0662", None), ("-1", None), ("1e3", None), ("12abc", None), (",", None),
    ("9" * 30, 10 ** 18), ("9" * 5000, 10 ** 18),  # no 5000-digit int from remote text
])
def test_declared_length_reads_ascii_only(value, length):
    assert declared_length(value) == length


def test_odd_content_length_and_retry_after_do_not_crash(scripted_server):
    base, routes, hits = scripted_server
    routes["/cl.jpg"] = (200, {"Content-Type": "image/jpeg", "Content-Length": "\u00b2", "Connection": "close"}, JPEG)
    routes["/cl-big.jpg"] = (200, {"Content-Length": "\u00b2", "Connection": "close"}, b"\xff" * 5000)
    routes["/ra.jpg"] = lambda n: (503, {"Retry-After": "\u00b2"}, b"") if n == 1 else (200, {}, JPEG)
    client = _client(max_bytes=1000)
    result = client.get(base + "/cl.jpg")  # read as undeclared: to the end of the connection
    assert result.ok and result.data == JPEG
    assert client.get(base + "/cl-big.jpg").failure == hc.TOO_LARGE  # and the cap still counts
    assert client.get(base + "/ra.jpg").ok and hits["/ra.jpg"] == 2


def _within(seconds, fn):
    """fn() in a daemon thread, or an assertion failure after ``seconds`` (a wait left unbounded)."""
    out = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert out, f"still waiting after {seconds} s"
    return out[0]


def test_crawl_delay_above_the_bound_fails_at_once(scripted_server):
    base, routes, hits = scripted_server
    routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, b"User-agent: *\nCrawl-delay: 100000\n")
    routes["/a.jpg"] = (200, {"Content-Type": "image/jpeg"}, JPEG)
    client = _client(max_host_delay_s=120)
    start = time.monotonic()
    first = _within(2, lambda: client.get(base + "/a.jpg"))
    second = _within(2, lambda: client.get(base + "/a.jpg"))
    assert first.failure == second.failure == hc.HOST_TOO_SLOW and "Crawl-delay 100000" in first.detail
    assert time.monotonic() - start < 2 and "/a.jpg" not in hits
    pair = AltPair(key="k", page_url=base + "/", image_url=base + "/a.jpg", caption="a b c d")
    assert fetch_image(client, pair, svg=False).reason == DropReason.FETCH_HOST_TOO_SLOW.value
    pages = crawl([base + "/a.html"], client.settings, max_depth=0, max_pages=1).results
    assert [p.reason for p in pages if isinstance(p, PageFailure)] == [DropReason.CRAWL_HOST_TOO_SLOW]


def test_crawl_delay_within_the_bound_spaces_requests(scripted_server):
    base, routes, _ = scripted_server
    routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, b"User-agent: *\nCrawl-delay: 0.3\n")
    routes["/a.jpg"] = (200, {"Content-Type": "image/jpeg"}, JPEG)
    client = _client(max_host_delay_s=1)
    start = time.monotonic()
    assert client.get(base + "/a.jpg").ok and client.get(base + "/a.jpg").ok
    assert 0.3 <= time.monotonic() - start < 2


def test_retry_after_above_the_bound_marks_the_host_too_slow(scripted_server, monkeypatch):
    base, routes, hits = scripted_server
    clock = type("Clock", (), {"now": 1000.0, "__call__": lambda self: self.now})()
    monkeypatch.setattr(robots.SLOW_HOSTS, "clock", clock)
    routes["/busy.jpg"] = (503, {"Retry-After": "100000"}, b"")
    routes["/a.jpg"] = (200, {"Content-Type": "image/jpeg"}, JPEG)
    client = _client(max_host_delay_s=1, retries=3)
    first = _within(2, lambda: client.get(base + "/busy.jpg"))
    assert first.failure == hc.HOST_TOO_SLOW and "Retry-After 100000" in first.detail and hits["/busy.jpg"] == 1
    later = _within(2, lambda: _client().get(base + "/a.jpg"))  # another client in the process: marked too
    assert later.failure == hc.HOST_TOO_SLOW and "/a.jpg" not in hits
    clock.now += 100001  # the server's wait has passed
    assert client.get(base + "/a.jpg").ok


def test_retry_after_within_the_bound_is_waited_in_full(scripted_server):
    base, routes, hits = scripted_server
    routes["/rl.jpg"] = lambda n: (429, {"Retry-After": "1"}, b"") if n == 1 else (200, {}, JPEG)
    start = time.monotonic()
    assert _client(max_host_delay_s=5).get(base + "/rl.jpg").ok
    assert 1.0 <= time.monotonic() - start < 3 and hits["/rl.jpg"] == 2


def test_retry_after_defers_the_next_request_to_the_host(scripted_server):
    base, routes, _ = scripted_server
    routes["/busy.jpg"] = (503, {"Retry-After": "1"}, b"")
    routes["/a.jpg"] = (200, {"Content-Type": "image/jpeg"}, JPEG)
    client = _client(retries=0, max_host_delay_s=5)
    start = time.monotonic()
    assert client.get(base + "/busy.jpg").failure == hc.HTTP_5XX and time.monotonic() - start < 0.5
    assert client.get(base + "/a.jpg").ok and time.monotonic() - start >= 1.0


@pytest.mark.fuzz
@given(st.one_of(st.text(max_size=80), st.lists(st.text(max_size=40), max_size=4)), st.text(max_size=12))
def test_x_robots_tag_parsing_never_raises(value, agent):
    assert noai_directive(value, agent) in (None, "noai", "noimageai")


@pytest.mark.fuzz
@given(st.text(max_size=60))
def test_header_numbers_never_raise(value):
    seconds = parse_retry_after(value)
    assert seconds is None or 0 <= seconds <= 1e9
    length = declared_length(value)
    assert length is None or 0 <= length <= 10 ** 18
