"""transforms.robots: robots.txt to RFC 9309, its status handling and the per-process cache."""

import gzip
import socket
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.records import AltPair, DropReason
from pipeline.specs import client_settings
from tests.default_specs import spec_with
from transforms import http_client as hc
from transforms import robots
from transforms.fetch import fetch_image
from transforms.http_client import HttpClient
from transforms.robots import (ROBOTS_MAX_BYTES, RobotsPolicy, SiteCache, lifetime, parse_robots,
                               policy_for_failure, product_token)

UA = "wit-curator/0.1 (+https://wit-curator.example/about)"
TOKEN = "wit-curator"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


def _allowed(txt, path, token=TOKEN):
    body = txt if isinstance(txt, bytes) else txt.encode()
    return parse_robots(body, token).allows("http://h.example" + path)


# robots.txt, path, allowed — RFC 9309 §2.2.2/2.2.3 and its examples
RFC_CASES = [
    ("User-agent: *\nDisallow: /private/\n", "/private/x.jpg", False),
    ("User-agent: *\nDisallow: /private/\n", "/public/x.jpg", True),
    ("User-agent: *\nDisallow: /private/\n", "/Private/x.jpg", True),  # paths are case-sensitive
    ("User-agent: *\nDisallow: /*.gif$\n", "/a/b.gif", False),
    ("User-agent: *\nDisallow: /*.gif$\n", "/a/b.gif?x=1", True),  # $ anchors at the very end
    ("User-agent: *\nDisallow: /*.gif$\n", "/a/b.gifs", True),
    ("User-agent: *\nDisallow: /fish*\n", "/fish.html", False),
    ("User-agent: *\nDisallow: /*/thumbs/\n", "/u/1/thumbs/x.jpg", False),
    ("User-agent: *\nDisallow: /$\n", "/", False),
    ("User-agent: *\nDisallow: /$\n", "/x", True),
    ("User-agent: *\nDisallow: /\nAllow: /images/\n", "/images/a.jpg", True),  # longest match, not first
    ("User-agent: *\nAllow: /images/\nDisallow: /images/private/\n", "/images/private/a.jpg", False),
    ("User-agent: *\nAllow: /page\nDisallow: /page\n", "/page", True),  # a tie: allow wins
    ("User-agent: *\nDisallow: /page\nAllow: /page\n", "/page", True),
    ("User-agent: *\nDisallow: /a%3cd\n", "/a%3Cd", False),  # percent-escapes compared normalised
    ("Disallow: /\nUser-agent: *\nDisallow: /x\n", "/y", True),  # a rule before any group is ignored
    ("User-agent: *\nDisallow:\n", "/anything", True),  # empty Disallow: nothing
    ("", "/anything", True),
    (b"\xef\xbb\xbfUser-agent: *\nDisallow: /x\n", "/x", False),  # a UTF-8 BOM does not lose group 1
    (b"User-agent: *\r\nDisallow: /x\r\n", "/x", False),
    (b"User-agent: *\nDisallow: /caf\xc3\xa9/\n", "/caf%C3%A9/a", False),
    (b"User-agent: *\nDisallow: /\xff/\n", "/%EF%BF%BD/a", False),  # bad UTF-8 replaced, not fatal
]


@pytest.mark.parametrize("txt,path,allowed", RFC_CASES)
def test_rfc9309_matching(txt, path, allowed):
    assert _allowed(txt, path) is allowed


# robots.txt, path, allowed for our product token "wit-curator" (RFC 9309 §2.2.1)
TOKEN_CASES = [
    ("User-agent: wit-curator\nDisallow: /a\n\nUser-agent: *\nDisallow: /b\n", "/a", False),
    ("User-agent: wit-curator\nDisallow: /a\n\nUser-agent: *\nDisallow: /b\n", "/b", True),  # our group only
    ("User-agent: WIT-Curator/2.0\nDisallow: /a\n", "/a", False),  # case-insensitive, version ignored
    ("User-agent: wit\nDisallow: /a\n", "/a", True),  # a prefix of our token is another crawler
    ("User-agent: wit-curator-beta\nDisallow: /a\n", "/a", True),
    ("User-agent: otherbot\nDisallow: /\n", "/a", True),
    ("User-agent: otherbot\nUser-agent: wit-curator\nDisallow: /\n", "/a", False),  # a group of two agents
    ("User-agent: github\nDisallow: /\n", "/a", True),  # a word of our User-Agent's URL is not our token
    ("User-agent: *\nDisallow: /\n\nUser-agent: wit-curator\nAllow: /\n", "/a", True),
    ("User-agent: wit-curator\nDisallow: /a\nUser-agent: wit-curator\nDisallow: /b\n", "/b", False),  # merged
    ("User-agent: *bot\nDisallow: /\n", "/a", True),
    # A void Crawl-delay still ends the first group: "a" keeps no rules.
    ("User-agent: a\nCrawl-delay: \u00b2\nUser-agent: wit-curator\nDisallow: /\n", "/a", False),
    ("User-agent: wit-curator\nCrawl-delay: \u00b2\nUser-agent: b\nDisallow: /\n", "/a", True),
]


@pytest.mark.parametrize("txt,path,allowed", TOKEN_CASES)
def test_groups_are_matched_by_our_whole_product_token(txt, path, allowed):
    assert _allowed(txt, path) is allowed


@pytest.mark.parametrize("ua,token", [
    (UA, "wit-curator"), ("wit-curator/0.1", "wit-curator"), ("MyBot", "mybot"), ("Wit_Curator/1", "wit_curator"),
    ("wit-curator-test", "wit-curator-test"), ("", ""), ("/1.0", ""), ("  bot2/1", "bot"),
])
def test_product_token(ua, token):
    assert product_token(ua) == token


@pytest.mark.parametrize("value,delay", [
    ("5", 5.0), ("0.5", 0.5), ("100000", 100000.0), ("10 # comment", 10.0), ("0", 0.0),
    ("\u00b2", 0.0), ("\u0661\u0662", 0.0), ("1e400", 0.0), ("1e3", 0.0), ("nan", 0.0), ("inf", 0.0),
    ("-1", 0.0), ("", 0.0), ("1_0", 0.0), ("9" * 400, 1e9),  # a huge delay stays huge (never inf)
])
def test_odd_crawl_delays_never_raise(value, delay):
    policy = parse_robots(f"User-agent: *\nCrawl-delay: {value}\n".encode(), TOKEN)
    assert policy.crawl_delay() == delay


def test_crawl_delay_of_our_group_only():
    txt = b"User-agent: *\nCrawl-delay: 9\n\nUser-agent: wit-curator\nCrawl-delay: 2\n"
    assert parse_robots(txt, TOKEN).crawl_delay() == 2.0
    assert parse_robots(txt, "otherbot").crawl_delay() == 9.0


def test_first_500_kib_are_parsed_and_the_rest_ignored():
    head = b"User-agent: *\nDisallow: /private/\n"
    pad = b"# " + b"x" * (ROBOTS_MAX_BYTES + 100_000) + b"\n"
    policy = parse_robots(head + pad + b"Disallow: /late/\n", TOKEN)
    assert policy.state == "parsed"
    assert not policy.allows("http://h/private/a") and policy.allows("http://h/late/a")


def test_a_line_cut_at_500_kib_is_dropped_not_read_wider():
    head = b"User-agent: *\nDisallow: /p\n"
    line = b"Allow: /p/deeper/only\n"
    pad = b"#" * (ROBOTS_MAX_BYTES - len(head) - len(b"Allow: /p") - 1) + b"\n"
    body = head + pad + line  # the cut falls just after "Allow: /p", which would allow all of /p
    assert len(head + pad) + len(b"Allow: /p") == ROBOTS_MAX_BYTES
    assert not parse_robots(body, TOKEN).allows("http://h/p/x")


@pytest.mark.parametrize("kind,status,state", [
    (hc.HTTP_4XX, 404, "absent"), (hc.HTTP_4XX, 401, "absent"), (hc.HTTP_4XX, 403, "absent"),
    (hc.HTTP_4XX, 410, "absent"), (hc.HTTP_4XX, 429, "unavailable"),
    (hc.HTTP_5XX, 500, "unavailable"), (hc.HTTP_5XX, 503, "unavailable"),
    (hc.DNS, 0, "unavailable"), (hc.CONNECT, 0, "unavailable"), (hc.TIMEOUT, 0, "unavailable"),
    (hc.TLS, 0, "unavailable"), (hc.INCOMPLETE, 0, "unavailable"), (hc.BAD_RESPONSE, 0, "unavailable"),
    (hc.PRIVATE, 0, "unavailable"), (hc.REDIRECT_LOOP, 302, "absent"), (hc.TOO_MANY_REDIRECTS, 0, "absent"),
])
def test_status_handling_rfc9309_2_3_1(kind, status, state):
    policy = policy_for_failure(kind, status, "detail")
    assert policy.state == state
    assert policy.allows("http://h/x") is (state == "absent")


def test_unavailable_answers_live_minutes_good_ones_the_configured_time():
    assert lifetime(RobotsPolicy.unavailable("x"), 86400) == robots.UNAVAILABLE_TTL_S == 300
    assert lifetime(RobotsPolicy.unavailable("x"), 60) == 60
    assert lifetime(RobotsPolicy.absent(), 86400) == 86400
    assert lifetime(parse_robots(b"", TOKEN), 1234) == 1234


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_site_cache_expires_entries_with_their_lifetime():
    clock = FakeClock()
    cache = SiteCache(clock=clock)
    loads = []

    def load():
        loads.append(1)
        return len(loads), 10.0

    assert cache.get("k", load) == 1 and cache.get("k", load) == 1
    clock.now += 9.9
    assert cache.get("k", load) == 1
    clock.now += 0.2
    assert cache.get("k", load) == 2 and len(loads) == 2


def test_site_cache_loads_once_for_concurrent_threads_and_is_bounded():
    cache = SiteCache(max_entries=3)
    loads = []

    def slow_load():
        loads.append(1)
        time.sleep(0.2)
        return "v", 60.0

    threads = [threading.Thread(target=cache.get, args=("k", slow_load)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(loads) == 1
    for i in range(5):
        cache.get(i, lambda: ("x", 60.0))
    assert len(cache._entries) == 3 and "k" not in cache._entries  # least recently used dropped


@pytest.mark.fuzz
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_as_robots_txt_never_raise(body):
    policy = parse_robots(body, TOKEN)
    policy.allows("http://h.example/some/path?q=1")
    assert policy.crawl_delay() >= 0


@pytest.mark.fuzz
@given(st.lists(st.sampled_from(["User-agent: ", "Disallow: ", "Allow: ", "Crawl-delay: ", "useragent ", "#", ""])
                .flatmap(lambda p: st.text(max_size=30).map(lambda t: p + t)), max_size=30),
       st.text(max_size=40))
def test_arbitrary_robots_lines_and_paths_never_raise(lines, path):
    policy = parse_robots("\n".join(lines).encode("utf-8", "surrogatepass"), TOKEN)
    policy.allows("http://h.example/" + path)
    assert policy.crawl_delay() >= 0


# -- over the network (a loopback server; the SSRF guard on, only its port exempt) -------


def _client(base, **kw):
    port = base.rsplit(":", 1)[1]
    settings = dict(guard_exempt=(f"127.0.0.1:{port}",), retries=0, connect_timeout_s=2, read_timeout_s=2,
                    total_timeout_s=5, user_agent=UA)
    settings.update(kw)
    return HttpClient(spec_with(client_settings, **settings))


def _robots(routes, body, status=200, headers=None):
    routes["/robots.txt"] = (status, {"Content-Type": "text/plain", **(headers or {})}, body)


def test_robots_redirects_are_followed_five_hops(scripted_server):
    base, routes, hits = scripted_server
    routes["/robots.txt"] = (301, {"Location": "/r1"}, b"")
    for i in range(1, 5):
        routes[f"/r{i}"] = (302, {"Location": f"/r{i + 1}"}, b"")
    routes["/r5"] = (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n")
    routes["/private/a.jpg"] = (200, {}, JPEG)
    assert _client(base).get(base + "/private/a.jpg").failure == hc.ROBOTS
    assert hits["/r5"] == 1 and "/private/a.jpg" not in hits


def test_robots_redirected_more_than_five_times_reads_as_absent(scripted_server):
    base, routes, hits = scripted_server
    routes["/robots.txt"] = (301, {"Location": "/r1"}, b"")
    for i in range(1, 8):
        routes[f"/r{i}"] = (302, {"Location": f"/r{i + 1}"}, b"")
    routes["/a.jpg"] = (200, {}, JPEG)
    assert _client(base).get(base + "/a.jpg").ok


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_robots_4xx_allows_all(scripted_server, status):
    base, routes, _ = scripted_server
    _robots(routes, b"User-agent: *\nDisallow: /\n", status)
    routes["/a.jpg"] = (200, {}, JPEG)
    assert _client(base).get(base + "/a.jpg").ok


@pytest.mark.parametrize("status", [500, 503, 429])
def test_robots_5xx_disallows_all_as_robots_unavailable(scripted_server, status):
    base, routes, hits = scripted_server
    _robots(routes, b"", status)
    routes["/a.jpg"] = (200, {}, JPEG)
    pair = AltPair(key="k", page_url=base + "/", image_url=base + "/a.jpg", caption="a b c d")
    out = fetch_image(_client(base), pair, svg=False)
    assert out.reason == DropReason.FETCH_ROBOTS_UNAVAILABLE.value and str(status) in out.detail
    assert "/a.jpg" not in hits


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # bound once, now closed: connections are refused


def test_unreachable_robots_disallows_all():
    port = _closed_port()
    result = _client(f"http://127.0.0.1:{port}").get(f"http://127.0.0.1:{port}/a.jpg")
    assert result.failure == hc.ROBOTS_UNAVAILABLE and "connect" in result.detail


def test_unavailable_robots_is_asked_again_after_a_few_minutes(scripted_server, monkeypatch):
    base, routes, hits = scripted_server
    clock = FakeClock()
    monkeypatch.setattr(robots.CACHE, "clock", clock)
    routes["/robots.txt"] = lambda n: (503, {}, b"") if n == 1 else (200, {}, b"User-agent: *\nDisallow: /p/\n")
    routes["/a.jpg"] = (200, {}, JPEG)
    client = _client(base)
    assert client.get(base + "/a.jpg").failure == hc.ROBOTS_UNAVAILABLE
    clock.now += 60
    assert client.get(base + "/a.jpg").failure == hc.ROBOTS_UNAVAILABLE  # still cached: not re-asked
    assert hits["/robots.txt"] == 1
    clock.now += robots.UNAVAILABLE_TTL_S
    assert client.get(base + "/a.jpg").ok and hits["/robots.txt"] == 2


def test_a_good_answer_lives_robots_cache_s(scripted_server, monkeypatch):
    base, routes, hits = scripted_server
    clock = FakeClock()
    monkeypatch.setattr(robots.CACHE, "clock", clock)
    _robots(routes, b"User-agent: *\nDisallow: /p/\n")
    routes["/a.jpg"] = (200, {}, JPEG)
    client = _client(base, robots_cache_s=100)
    assert client.get(base + "/a.jpg").ok
    clock.now += 99
    assert client.get(base + "/a.jpg").ok and hits["/robots.txt"] == 1
    clock.now += 2
    assert client.get(base + "/a.jpg").ok and hits["/robots.txt"] == 2


def test_one_robots_fetch_shared_by_two_clients_and_many_threads(scripted_server):
    base, routes, hits = scripted_server

    def slow_robots(n):
        time.sleep(0.2)
        return 200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n"

    routes["/robots.txt"] = slow_robots
    routes["/a.jpg"] = (200, {}, JPEG)
    crawl_client, image_client = _client(base), _client(base)
    results = []
    threads = [threading.Thread(target=lambda c=c: results.append(c.get(base + "/a.jpg")))
               for c in [crawl_client, image_client] * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 8 and all(r.ok for r in results)
    assert hits["/robots.txt"] == 1
    assert image_client.get(base + "/private/x.jpg").failure == hc.ROBOTS and hits["/robots.txt"] == 1


def test_large_and_inflating_robots_are_parsed_not_refused(scripted_server):
    base, routes, _ = scripted_server
    txt = b"User-agent: *\nDisallow: /private/\n" + b"#" * (2 * ROBOTS_MAX_BYTES) + b"\nDisallow: /late/\n"
    routes["/robots.txt"] = (200, {"Content-Type": "text/plain", "Content-Encoding": "gzip"}, gzip.compress(txt))
    routes["/late/a.jpg"] = (200, {}, JPEG)
    client = _client(base)
    assert client.get(base + "/private/a.jpg").failure == hc.ROBOTS
    assert client.get(base + "/late/a.jpg").ok  # the rule past 500 KiB is not read
    robots.clear_caches()
    routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, txt)  # plain, Content-Length 1 MB
    assert _client(base).get(base + "/private/a.jpg").failure == hc.ROBOTS


def test_odd_crawl_delay_over_the_network_does_not_crash(scripted_server):
    base, routes, _ = scripted_server
    _robots(routes, "User-agent: *\nCrawl-delay: \u00b2\n".encode())
    routes["/a.jpg"] = (200, {}, JPEG)
    assert _client(base).get(base + "/a.jpg").ok
