"""transforms.url_canonical: the one canonical URL form (crawl, URL dedupe, blocklists).

Table-driven cases, then hypothesis: never raises on arbitrary text, idempotent, the regex
shortcut equal to the full path, equal for the userinfo / dot-segment / IDNA / percent-encoding /
default-port / case / fragment variants of one URL, and a fixed point of what requests sends.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests.utils
from hypothesis import given
from hypothesis import strategies as st

from transforms.url_canonical import _canonical_slow, canonical_host, canonical_url, remove_dot_segments
from transforms.url_guard import url_problem

_C0 = "".join(map(chr, range(33)))


@pytest.mark.parametrize("url, expected", [
    ("http://h/p#frag", "http://h/p"),                                    # fragment dropped
    ("http://h/p?b=2&a=1#x", "http://h/p?b=2&a=1"),                       # query order kept
    ("http://h/p?x&y=", "http://h/p?x&y="),                               # blank values kept as written
    ("http://h:80/p", "http://h/p"),                                      # default ports
    ("https://h:443/p", "https://h/p"),
    ("http://h:443/p", "http://h:443/p"),                                 # not default for http
    ("http://h:08080/p", "http://h:8080/p"),
    ("HTTP://Example.COM/Path", "http://example.com/Path"),               # scheme/host only
    ("http://user:pw@h/p", "http://h/p"),                                 # userinfo dropped
    ("http://trusted.example@evil.example/p", "http://evil.example/p"),   # ... the host is what follows @
    ("http://bücher.de/a", "http://xn--bcher-kva.de/a"),                  # IDNA (UTS #46)
    ("http://straße.de/", "http://xn--strae-oqa.de/"),                    # ... non-transitional, as requests
    ("http://a_b.ü.de/", "http://a_b.xn--tda.de/"),                       # ... stdlib codec where idna refuses
    ("http://example.com./x", "http://example.com/x"),                    # trailing dot
    ("http://[::0:1]:80/a", "http://[::1]/a"),                            # IPv6 compressed, brackets kept
    ("http://h/a/../b/./c", "http://h/b/c"),                              # dot segments
    ("http://h/a/%2e%2E/b", "http://h/b"),                                # ... encoded dots too
    ("http://h//a//b", "http://h//a//b"),                                 # empty segments kept
    ("http://h/%7euser/%41%2f", "http://h/~user/A%2F"),                   # unreserved decoded, others upper
    ("http://h/ä b.jpg?q=ä", "http://h/%C3%A4%20b.jpg?q=%C3%A4"),         # encoded as requests sends them
    ("http://h/a|b{c}", "http://h/a%7Cb%7Bc%7D"),
    ("http://h/%zz%4", "http://h/%25zz%254"),                             # a stray % is %25
    ("http://h", "http://h/"),                                            # empty path
    ("http://h?q=1", "http://h/?q=1"),
    ("  http://h/p \n", "http://h/p"),                                    # surrounding space
    ("http://h/a #f", "http://h/a%20"),
    ("http://[::1", "http://[::1"),                                       # does not parse: as written
    ("http://h:abc/x#f", "http://h:abc/x"),                               # bad port: as written
    ("mailto:x@y#z", "mailto:x@y"),                                       # no host: as written
    ("http://127.0.0.1:8000/images/a.jpg", "http://127.0.0.1:8000/images/a.jpg"),
])
def test_canonical_url(url, expected):
    assert canonical_url(url) == expected
    assert canonical_url(expected) == expected  # idempotent


@pytest.mark.parametrize("path, expected", [
    ("/a/b/../c", "/a/c"), ("/../x", "/x"), ("/a/..", "/"), ("/a/./", "/a/"), ("/a/.", "/a/"), ("", "/"),
    ("/.well-known/x", "/.well-known/x"), ("/a//../b", "/a/b"),
])
def test_remove_dot_segments(path, expected):
    assert remove_dot_segments(path) == expected


def test_canonical_host():
    assert canonical_host("WWW.Example.COM.") == "www.example.com"
    assert canonical_host("Bücher.DE") == "xn--bcher-kva.de"
    assert canonical_host("::FFFF:0:1") == "::ffff:0:1"
    assert canonical_host("ä..b") == "ä..b"  # refused by both IDNA codecs: kept, lower case
    assert canonical_host("bücher.de..") == "xn--bcher-kva.de"  # trailing dots go before IDNA


# ---- properties ----------------------------------------------------------------------------------

_PIECES = list("abcXYZ019:/?#[]@%.-_~!$&'()*+,;= \t\n\r\\\"<>|^`{}") + [
    "é", "１", "²", "\u3000", "\x00", "\x7f", "\u2028", "\ud800", "%zz", "%41", "%2e", "%2F", "%c3%a4", "::1", "..",
    "/./", "/../", "ß", "xn--", "user:pw@", ":80", ":443", ":0", ":65536"]
_PREFIXES = ["", "http://", "https://", "HTTP://", "//", "http://h", "http://h/", "http://[::1]", "http://[", "ftp://",
             "http://bücher.de", "http://u@h.example", "mailto:", "https://H.EXAMPLE.:443"]
_text = st.lists(st.sampled_from(_PIECES), max_size=25).map("".join)
url_text = st.one_of(st.tuples(st.sampled_from(_PREFIXES), _text).map("".join), st.text(max_size=60))


@pytest.mark.fuzz
@given(url_text)
def test_never_raises_is_idempotent_and_the_shortcut_agrees(url):
    out = canonical_url(url)
    assert isinstance(out, str)
    assert canonical_url(out) == out
    assert out == _canonical_slow(url.strip(_C0))


@pytest.mark.fuzz
@given(url_text)
def test_a_fetchable_url_stays_fetchable_and_is_what_requests_sends(url):
    if url_problem(url.strip(_C0), None) != "":
        return
    out = canonical_url(url)
    assert url_problem(out, None) == ""
    parts = urlsplit(out)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    assert requests.utils.requote_uri(target) == target  # requests sends the stored path and query unchanged


_LABELS = st.sampled_from(["img", "cdn", "example", "bücher", "straße", "xn--bcher-kva", "a-b", "x1"])
_SEGMENTS = st.lists(st.sampled_from(["a", "b.jpg", "ä", "~u", "%2F", "a b", "c-d_e", ""]), min_size=1, max_size=4)
_QUERY = st.sampled_from(["", "q=1", "b=2&a=1", "x", "s=ä", "k=%2F"])


def _encode_unreserved(segment: str, upper: bool) -> str:
    """``segment`` with its unreserved characters percent-encoded (a variant that names the same path)."""
    unreserved = "abcdefghijklmnopqrstuvwxyz-._~"
    return "".join((f"%{ord(c):02X}" if upper else f"%{ord(c):02x}") if c in unreserved else c for c in segment)


def _ascii_upper(text: str) -> str:
    return "".join(c.upper() if c.isascii() else c for c in text)  # "ß".upper() is "SS": another name


@pytest.mark.fuzz
@given(st.sampled_from(["http", "https"]), st.lists(_LABELS, min_size=1, max_size=3), _SEGMENTS, _QUERY,
       st.sampled_from(["", ":8080"]), st.booleans())
def test_variants_of_one_url_are_equal(scheme, labels, segments, query, port, upper):
    host = ".".join(labels + ["test"])
    path = "/" + "/".join(segments)
    tail = f"?{query}" if query else ""
    default = {"http": ":80", "https": ":443"}[scheme]
    puny = ".".join(canonical_host(label) for label in host.split("."))
    encoded = "/".join(_encode_unreserved(segment, upper) for segment in path.split("/"))
    variants = [
        f"{scheme}://{host}{port}{path}{tail}",
        f"{scheme}://user:secret@{host}{port}{path}{tail}",                 # userinfo
        f"{scheme}://{host}{port}/x/../.{path}{tail}",                       # dot segments
        f"{scheme}://{puny}{port}{path}{tail}",                              # IDNA
        f"{scheme.upper()}://{_ascii_upper(host)}.{port}{path}{tail}",       # case, trailing dot
        f"{scheme}://{host}{port}{encoded}{tail}",                           # percent-encoding
        f"{scheme}://{host}{port or default}{path}{tail}#fragment",          # default port, fragment
    ]
    assert len({canonical_url(v) for v in variants}) == 1, {v: canonical_url(v) for v in variants}
