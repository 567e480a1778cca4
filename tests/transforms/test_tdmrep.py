"""transforms.tdmrep: TDMRep tdmrep.json rules and the tdm-reservation header, alone and in the client."""

import json
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.records import AltPair, DropReason, PageFailure
from pipeline.specs import client_settings
from tests.default_specs import spec_with
from transforms import http_client as hc
from tests.transforms.crawl_run import crawl
from transforms.fetch import fetch_image
from transforms.http_client import FetchResult, HttpClient
from transforms.tdmrep import TDMREP_MAX_BYTES, TDMREP_PATH, header_reserved, parse_tdmrep, rules_from

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64

# The spec's own example (section "TDM File on the Origin Server").
SPEC_EXAMPLE = [
    {"location": "/directory-a/", "tdm-reservation": 1},
    {"location": "/directory-b/html/", "tdm-reservation": 1, "tdm-policy": "https://provider.example/policies/policy.json"},
    {"location": "/directory-b/images/*.jpg", "tdm-reservation": 0},
]


def _reserved(rules, path):
    rule = parse_tdmrep(json.dumps(rules).encode()).reserving_rule("https://provider.example" + path)
    return rule is not None


# rules, path, reserved
CASES = [
    ([{"location": "/", "tdm-reservation": 1}], "/anything/at/all.jpg", True),
    ([{"location": "/", "tdm-reservation": 1}], "/", True),
    (SPEC_EXAMPLE, "/directory-a/report.pdf", True),
    (SPEC_EXAMPLE, "/directory-b/html/page.html", True),
    (SPEC_EXAMPLE, "/directory-b/images/cat.jpg", False),  # 0: not reserved
    (SPEC_EXAMPLE, "/directory-b/images/cat.png", False),  # no match: unset
    (SPEC_EXAMPLE, "/directory-c/x", False),
    # The first rule in sequence decides, even when a later one is longer.
    ([{"location": "/a/", "tdm-reservation": 0}, {"location": "/a/b/", "tdm-reservation": 1}], "/a/b/c", False),
    ([{"location": "/a/b/", "tdm-reservation": 1}, {"location": "/a/", "tdm-reservation": 0}], "/a/b/c", True),
    ([{"location": "/exact$", "tdm-reservation": 1}], "/exact", True),
    ([{"location": "/exact$", "tdm-reservation": 1}], "/exactly", False),
    ([{"location": "/*.jpg$", "tdm-reservation": 1}], "/x/y.jpg", True),
    ([{"location": "/*.jpg$", "tdm-reservation": 1}], "/x/y.jpg?size=2", False),
    ([{"location": "/*.jpg", "tdm-reservation": 1}], "/x/y.jpg?size=2", True),
    ([{"location": "/img/*/full/", "tdm-reservation": 1}], "/img/2024/05/full/a.jpg", True),
    ([{"location": "/img/*/full/", "tdm-reservation": 1}], "/img/2024/thumb/a.jpg", False),
    ([{"location": "/Images/", "tdm-reservation": 1}], "/images/a.jpg", False),  # case-sensitive
    ([{"location": "/path/foo-%24", "tdm-reservation": 1}], "/path/foo-$", True),  # the spec's escape example
    ([{"location": "/%7Euser/", "tdm-reservation": 1}], "/~user/a", True),  # unreserved escapes decoded
    ([{"location": "/~user/", "tdm-reservation": 1}], "/%7euser/a", True),
    ([{"location": "/caf\u00e9/", "tdm-reservation": 1}], "/caf%C3%A9/a", True),
    ([{"location": "/a%2Fb", "tdm-reservation": 1}], "/a/b", False),  # a reserved escape stays escaped
    ([{"location": "/search?q=", "tdm-reservation": 1}], "/search?q=cats", True),
    ([{"location": "images/", "tdm-reservation": 1}], "/images/a.jpg", True),  # a missing leading "/"
    ([{"location": "https://provider.example/images/", "tdm-reservation": 1}], "/images/a.jpg", True),
    # tdm-reservation values: 1 / "1" reserve; anything else is a protocol error (unset).
    ([{"location": "/", "tdm-reservation": "1"}], "/a", True),
    ([{"location": "/", "tdm-reservation": 2}], "/a", False),
    ([{"location": "/", "tdm-reservation": True}], "/a", False),
    ([{"location": "/", "tdm-reservation": None}], "/a", False),
    # A rule without its mandatory properties is skipped: the next one applies.
    ([{"location": "/"}, {"location": "/", "tdm-reservation": 1}], "/a", True),
    ([{"tdm-reservation": 0}, {"location": "/", "tdm-reservation": 1}], "/a", True),
    ([{"location": 5, "tdm-reservation": 0}, {"location": "/", "tdm-reservation": 1}], "/a", True),
    (["junk", None, 3, {"location": "/", "tdm-reservation": 1}], "/a", True),
    ([{"location": "", "tdm-reservation": 1}], "/a", False),
]


@pytest.mark.parametrize("rules,path,reserved", CASES)
def test_tdmrep_location_rules(rules, path, reserved):
    assert _reserved(rules, path) is reserved


def test_the_reserving_rule_carries_its_policy():
    rule = parse_tdmrep(json.dumps(SPEC_EXAMPLE).encode()).reserving_rule("https://p.example/directory-b/html/x")
    assert rule.location == "/directory-b/html/" and rule.policy.endswith("policy.json")


@pytest.mark.parametrize("body", [
    b"", b"not json", b"{}", b'{"location": "/", "tdm-reservation": 1}', b"null", b"1", b'"x"', b"[1, 2]",
    b"[" * 100_000, b"[" * 60_000, b"\xff\xfe[]", json.dumps([{"location": "/", "tdm-reservation": 1}] * 3000).encode(),
])
def test_malformed_or_oversized_files_reserve_nothing(body):
    assert parse_tdmrep(body).reserving_rule("https://h/a") is None


def test_a_bom_is_accepted_and_the_size_is_bounded():
    body = b"\xef\xbb\xbf" + json.dumps([{"location": "/", "tdm-reservation": 1}]).encode()
    assert parse_tdmrep(body).reserving_rule("https://h/a") is not None
    big = json.dumps([{"location": "/", "tdm-reservation": 1, "pad": "x" * TDMREP_MAX_BYTES}]).encode()
    assert parse_tdmrep(big).reserving_rule("https://h/a") is None


@pytest.mark.parametrize("values,reserved", [
    (["1"], True), ([" 1 "], True), (["0"], False), (["0", "1"], True), (["1, 0"], True), ([], False),
    ([""], False), (["yes"], False), (["\u00b9"], False), (["2"], False), (["01"], False),
])
def test_header_reserved(values, reserved):
    assert header_reserved(values) is reserved


@pytest.mark.parametrize("result,ttl", [
    (FetchResult(True, "u", status=200, data=b"[]"), 86400),
    (FetchResult(False, "u", status=404, failure=hc.HTTP_4XX), 86400),
    (FetchResult(False, "u", status=503, failure=hc.HTTP_5XX), 300),
    (FetchResult(False, "u", status=429, failure=hc.HTTP_4XX), 300),
    (FetchResult(False, "u", failure=hc.TIMEOUT), 300),
])
def test_a_missing_file_is_an_answer_a_failing_one_is_asked_again(result, ttl):
    rules, lifetime = rules_from(result, 86400)
    assert rules.rules == () and lifetime == ttl


_KEYS = st.sampled_from(["location", "tdm-reservation", "tdm-policy", "x"]) | st.text(max_size=5)
_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                     lambda children: st.lists(children, max_size=5) | st.dictionaries(_KEYS, children, max_size=4),
                     max_leaves=20)


@pytest.mark.fuzz
@given(st.binary(max_size=2048), st.text(max_size=60))
def test_arbitrary_bytes_as_tdmrep_json_never_raise(body, path):
    parse_tdmrep(body).reserving_rule("https://h.example/" + path)


@pytest.mark.fuzz
@given(st.lists(_JSON, max_size=8), st.text(max_size=60))
def test_arbitrary_json_rules_and_paths_never_raise(rules, path):
    parse_tdmrep(json.dumps(rules).encode()).reserving_rule("https://h.example/" + path)


@pytest.mark.fuzz
@given(st.lists(st.text(max_size=40), max_size=4))
def test_arbitrary_header_values_never_raise(values):
    assert header_reserved(values) in (True, False)


# -- in the client (a loopback server; the SSRF guard on, only its port exempt) ----------


def _client(base, **kw):
    port = base.rsplit(":", 1)[1]
    settings = dict(guard_exempt=(f"127.0.0.1:{port}",), retries=0, connect_timeout_s=2, read_timeout_s=2,
                    total_timeout_s=5)
    settings.update(kw)
    return HttpClient(spec_with(client_settings, **settings))


def _pair(base, path):
    return AltPair(key="k", page_url=base + "/", image_url=base + path, caption="a b c d")


def test_tdmrep_json_refuses_before_the_request_is_sent(scripted_server):
    base, routes, hits = scripted_server
    routes[TDMREP_PATH] = (200, {"Content-Type": "application/json"},
                           json.dumps([{"location": "/private/", "tdm-reservation": 1}]).encode())
    routes["/private/a.jpg"] = (200, {}, JPEG)
    routes["/ok.jpg"] = (200, {}, JPEG)
    out = fetch_image(_client(base), _pair(base, "/private/a.jpg"), svg=False)
    assert out.reason == DropReason.FETCH_TDM_RESERVED.value and "/private/" in out.detail
    assert "/private/a.jpg" not in hits
    assert _client(base).get(base + "/ok.jpg").ok
    assert hits[TDMREP_PATH] == 1  # once per origin per process, shared by both clients


def test_tdmrep_json_is_ignored_when_not_respected_or_broken(scripted_server):
    base, routes, hits = scripted_server
    routes[TDMREP_PATH] = (200, {}, json.dumps([{"location": "/", "tdm-reservation": 1}]).encode())
    routes["/a.jpg"] = (200, {}, JPEG)
    assert _client(base, respect_tdmrep=False).get(base + "/a.jpg").ok
    assert TDMREP_PATH not in hits
    for route in [(404, {}, b""), (500, {}, b""), (200, {}, b"[{broken"), (200, {}, b'{"location": "/"}')]:
        from transforms import robots

        robots.clear_caches()
        routes[TDMREP_PATH] = route
        assert _client(base).get(base + "/a.jpg").ok, route


def test_tdm_reservation_header_is_decided_before_the_body(scripted_server):
    base, routes, _ = scripted_server
    # A body that never finishes: had it been read, the fetch would end in a timeout, not in 0.x s.
    routes["/r.jpg"] = (200, {"tdm-reservation": "1", "tdm-policy": "https://h/policy.json",
                              "Content-Length": "100000000"}, JPEG)
    client = _client(base, max_bytes=200_000_000)
    start = time.monotonic()
    out = fetch_image(client, _pair(base, "/r.jpg"), svg=False)
    assert out.reason == DropReason.FETCH_TDM_RESERVED.value and "policy.json" in out.detail
    assert time.monotonic() - start < 1.5


def test_tdm_reservation_header_on_a_page_is_crawl_tdm_reserved(scripted_server):
    base, routes, _ = scripted_server
    routes["/page.html"] = (200, {"Content-Type": "text/html", "tdm-reservation": "1"}, b"<html></html>")
    routes["/free.html"] = (200, {"Content-Type": "text/html", "tdm-reservation": "0"}, b"<html></html>")
    out = crawl([base + "/page.html", base + "/free.html"], _client(base).settings, max_depth=0, max_pages=5).results
    failures = {o.url.rsplit("/", 1)[1]: o.reason for o in out if isinstance(o, PageFailure)}
    assert failures == {"page.html": DropReason.CRAWL_TDM_RESERVED}


def test_tdm_header_is_ignored_when_not_respected(scripted_server):
    base, routes, _ = scripted_server
    routes["/r.jpg"] = (200, {"tdm-reservation": "1"}, JPEG)
    assert _client(base, respect_tdmrep=False).get(base + "/r.jpg").ok
    assert _client(base).get(base + "/r.jpg").failure == hc.TDM_RESERVED
