import io
import time

import pytest
from PIL import Image

from pipeline.records import AltPair, DropReason, FetchedImage, Rejection
from transforms import http_client as hc
from transforms.fetch import fetch_image, sniff_image_type
from transforms.http_client import ClientSettings, HttpClient, is_blocked_address, noai_directive


def _jpeg():
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), (1, 2, 3)).save(buf, format="JPEG")
    return buf.getvalue()


JPEG = _jpeg()


def _client(**kw):
    base = dict(allow_private_networks=True, retries=1, connect_timeout_s=2, read_timeout_s=2, total_timeout_s=5)
    base.update(kw)
    return HttpClient(ClientSettings(**base))


@pytest.mark.parametrize("addr,blocked", [
    ("127.0.0.1", True), ("10.1.2.3", True), ("192.168.0.1", True), ("169.254.169.254", True),
    ("::1", True), ("224.0.0.1", True), ("0.0.0.0", True), ("::ffff:127.0.0.1", True),
    ("93.184.216.34", False), ("2606:4700::1111", False),
])
def test_ssrf_address_classes(addr, blocked):
    assert is_blocked_address(addr) is blocked


@pytest.mark.parametrize("value,expected", [
    ("noai", "noai"), ("noindex, noimageai", "noimageai"), ("googlebot: noai", "noai"),
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
    result = HttpClient(ClientSettings()).get(base + "/a.jpg")
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
    out = fetch_image(_client(retries=0), pair)
    assert isinstance(out, Rejection) and out.reason == reason.value and out.key == "k"


def test_fetch_image_ok(scripted_server):
    base, routes, _ = scripted_server
    routes["/x.jpg"] = (200, {"Content-Type": "application/octet-stream"}, JPEG)
    pair = AltPair(key="k", page_url=base + "/", image_url=base + "/x.jpg", caption="a b c d")
    out = fetch_image(_client(), pair)
    assert isinstance(out, FetchedImage) and out.mime == "image/jpeg" and out.data == JPEG


def test_connection_refused_is_classified():
    pair = AltPair(key="k", page_url="p", image_url="http://127.0.0.1:9/x.jpg", caption="a b c d")
    out = fetch_image(_client(retries=0), pair)
    assert out.reason == DropReason.FETCH_CONNECT.value


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
