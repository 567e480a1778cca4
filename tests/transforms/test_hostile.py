"""The hostile-server suite: each misbehaviour ends in its exact reason code, in bounded time.

The SSRF guard stays ON here: only the test server's own host:port is exempt,
so redirects to other loopback ports, 10.x and 169.254.169.254 are refused
before any connection is attempted.
"""

import socket
import time

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from filters.image_rules import image_verdict
from pipeline.config import ImageRulesConfig
from pipeline.records import AltPair, Rejection
from tests.conftest import counter, local_test_pipeline
from tests.transforms.hostile_server import HostileServer
from transforms.fetch import FetchImages, fetch_and_resize
from transforms.http_client import ClientSettings, HttpClient
from transforms.resize import ResizeSpec

SPEC = ResizeSpec(image_size=64, mode="border", max_pixels=50_000_000)


def _settings(exempt: str, **kw) -> ClientSettings:
    base = dict(connect_timeout_s=1.0, read_timeout_s=1.0, total_timeout_s=3.0, max_bytes=2_000_000,
                max_redirects=5, retries=1, guard_exempt=(exempt,), user_agent="wit-curator-test")
    base.update(kw)
    return ClientSettings(**base)


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
    ("/to-loopback", "fetch.private_address", 2),
    ("/to-private", "fetch.private_address", 2),
    ("/to-metadata", "fetch.private_address", 2),
    ("/rate-limited.jpg", "ok", 4),
    ("/unavailable.jpg", "ok", 3),
    ("/private/secret.jpg", "fetch.robots_disallowed", 2),
    ("/noai.jpg", "fetch.noai", 2),
    ("/noimageai.jpg", "fetch.noai", 2),
    ("/huge-headers.jpg", "fetch.bad_response", 4),
    ("/reset.jpg", "fetch.incomplete_body", 4),
    ("/http10.jpg", "ok", 2),
    ("/wrong-charset.jpg", "ok", 2),
    ("/image.svg", "fetch.unsupported_format", 2),
    ("/tracker.gif", "image.too_small", 2),
    ("/cmyk.jpg", "ok", 2),
    ("/animated.gif", "ok", 2),
    ("/not-found.jpg", "fetch.http_4xx", 2),
]


@pytest.fixture(scope="module")
def hostile():
    with HostileServer() as server:
        yield server


def _outcome(out) -> str:
    if isinstance(out, Rejection):
        return out.reason
    verdict = image_verdict(out.original_width, out.original_height, ImageRulesConfig())
    return verdict[0].value if verdict else "ok"


@pytest.mark.parametrize("path,expected,bound", CASES, ids=[c[0] for c in CASES])
def test_misbehaviour_gets_its_reason_in_bounded_time(hostile, path, expected, bound):
    client = HttpClient(_settings(hostile.exempt))
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


def test_suite_covers_at_least_25_misbehaviours():
    assert len({c[0] for c in CASES if c[0] != "/ok.jpg"}) >= 25


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
    client = HttpClient(_settings(hostile.exempt))
    assert client.get(hostile.base_url + "/noai.jpg", check_noai=True).data == b""


def test_guard_never_connects_to_refused_addresses(hostile, monkeypatch):
    connects = []
    real = socket.create_connection
    monkeypatch.setattr(socket, "create_connection", lambda addr, *a, **k: connects.append(addr) or real(addr, *a, **k))
    client = HttpClient(_settings(hostile.exempt))
    for path in ("/to-private", "/to-metadata", "/to-loopback"):
        assert client.get(hostile.base_url + path).failure == "private_address"
    assert all(host == "127.0.0.1" and port == hostile.port for host, port in connects)


def test_dns_failure_is_classified(monkeypatch):
    def fail(*_a, **_k):
        raise socket.gaierror(-2, "Name or service not known")
    monkeypatch.setattr(socket, "getaddrinfo", fail)
    client = HttpClient(ClientSettings(retries=0))
    assert client.get("http://no-such-host.invalid/x.jpg").failure == "dns"


def test_tls_failure_is_classified(hostile):
    client = HttpClient(_settings(hostile.exempt, retries=0))
    assert client.get(f"https://127.0.0.1:{hostile.port}/ok.jpg").failure == "tls"  # TLS to a plain-HTTP port


def test_pipeline_accounts_for_every_misbehaviour(hostile):
    pairs = [AltPair(key=f"{i:04x}", page_url=hostile.base_url + "/", image_url=hostile.base_url + path,
                     caption="a red square on white") for i, (path, _e, _b) in enumerate(CASES)]
    p = local_test_pipeline()
    images, rejected = (p | beam.Create(pairs)
                        | FetchImages(_settings(hostile.exempt), concurrency=16, per_host=16, resize=SPEC))
    outcomes = images | "Kept" >> beam.Map(lambda im: (im.pair.key, "resized"))
    dropped = rejected | "Dropped" >> beam.Map(lambda r: (r.key, r.reason))
    expected = [(f"{i:04x}", "resized" if e in ("ok", "image.too_small") else e) for i, (_p, e, _b) in enumerate(CASES)]
    assert_that((outcomes, dropped) | beam.Flatten(), equal_to(expected))
    start = time.monotonic()
    result = p.run()
    result.wait_until_finish()
    assert time.monotonic() - start < 30
    assert counter(result, "images_fetched") == sum(1 for _k, o in expected if o == "resized")
