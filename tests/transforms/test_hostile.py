"""The hostile-server suite: each misbehaviour ends in its exact reason code, in bounded time.

The SSRF guard stays ON here: only the test server's own host:port is exempt,
so redirects to every refused address form (hostile_server.SSRF_REDIRECTS) end
in ``fetch.private_address`` before any connection is attempted. No traffic may
leave loopback even when a guard is switched off (tests/mutation): every test
here runs with socket connects to non-loopback addresses refused and recorded.
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
from tests.transforms.hostile_server import (BAD_REDIRECTS, HOLD_S, SSRF_REDIRECTS, CountingListener, HostileServer,
                                            forbid_off_loopback)
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
    ("/image.svg", "fetch.unsupported_format", 2),
    ("/tracker.gif", "image.too_small", 2),
    ("/cmyk.jpg", "ok", 2),
    ("/animated.gif", "ok", 2),
    ("/not-found.jpg", "fetch.http_4xx", 2),
    # every refused address form, on a redirect hop (hostile_server.SSRF_REDIRECTS)
    *[(path, "fetch.private_address", 2) for path in SSRF_REDIRECTS],
    # a Location that is no URL we fetch: a rejection, never a ValueError
    *[(path, "fetch.bad_url", 2) for path in BAD_REDIRECTS],
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


def test_suite_covers_at_least_70_misbehaviours():
    assert len({c[0] for c in CASES if c[0] != "/ok.jpg"}) >= 70
    assert len({c[0] for c in CASES}) == len(CASES)


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
    client = HttpClient(ClientSettings(retries=0))
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
