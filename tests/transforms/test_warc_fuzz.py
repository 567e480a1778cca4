"""Fuzzing the archive readers (hypothesis): arbitrary bytes as a WARC/ARC file (raw, gzipped, in
gzip members), valid archives with mutated bytes, headers and Content-Lengths, and arbitrary JSON
as WAT payloads. Whatever comes in: no exception escapes, every tally kind is one of the closed set,
no record needs the internal-error guard (that would be a bug found), every detail is bounded,
and every WAT <img> link ends as exactly one pair or rejection."""

import collections
import gzip
import io
import json
import re

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from pipeline.records import DETAIL_MAX_CHARS, AltPair, Page, PageFailure, Rejection
from pipeline.specs import extract_spec, warc_limits
from tests.default_specs import spec_with
from tests.transforms.warc_fixtures import SVG, ArcBuilder, ArchiveBuilder, gzipped, jpeg
from transforms.warc import ArchivedImage, read_warc
from transforms.warc_records import KINDS
from transforms.wat import IMG_PATH, parse_wat_payload, wat_pairs

LIMITS = spec_with(warc_limits, max_page_bytes=20_000, max_image_bytes=20_000)
PAGE = b"<html><head><title>t</title></head><body><img src='a.jpg' alt='a red square'></body></html>"
IMAGE = jpeg((200, 30, 30), size=(16, 16))
LINKS = [{"path": IMG_PATH, "url": "/x.jpg", "alt": "x"}]


def _check(data: bytes) -> list:
    """read_warc's outputs for one file, with the invariants every input must keep."""
    warnings = collections.Counter()
    out = list(read_warc(io.BytesIO(data), "fuzz.warc", LIMITS, spec_with(extract_spec), warnings))
    after_wat = False
    for kind, item in out:
        if kind is None:
            assert after_wat and isinstance(item, (AltPair, Rejection)), (kind, item)
            assert isinstance(item, AltPair) or item.reason != "extract.internal_error", item.detail
            continue
        assert kind in KINDS and kind != "internal_error", (kind, getattr(item, "detail", ""))
        after_wat = kind == "wat"
        if isinstance(item, PageFailure):
            assert len(item.detail) <= DETAIL_MAX_CHARS
        elif isinstance(item, ArchivedImage):
            assert bool(item.reason) != bool(item.data) or item.reason
            assert len(item.detail) <= DETAIL_MAX_CHARS
        elif isinstance(item, Page):
            assert isinstance(item.html, bytes) and item.url.startswith(("http://", "https://"))
        else:
            assert item is None, (kind, item)
    assert all(isinstance(k, str) and n > 0 for k, n in warnings.items())
    return out


def _warc(gz: bool) -> bytes:
    return (ArchiveBuilder(gz).warcinfo().response("http://h/p.html", PAGE)
            .response("http://h/a.jpg", IMAGE, "image/jpeg").response("http://h/s.svg", SVG, "image/svg+xml")
            .response("http://h/z.html", gzipped(PAGE), extra_headers=[("Content-Encoding", "gzip")])
            .revisit("http://h/old.html").wat("http://h/w.html", LINKS).request("http://h/p.html")).getvalue()


def _arc(gz: bool) -> bytes:
    return (ArcBuilder(gz).response("http://h/p.html", PAGE).response("http://h/a.jpg", IMAGE, "image/jpeg")
            .response("http://h/gone.html", b"gone", status=404)).getvalue()


VALID = {name: make() for name, make in (
    ("warc.gz", lambda: _warc(True)), ("warc", lambda: _warc(False)),
    ("arc.gz", lambda: _arc(True)), ("arc", lambda: _arc(False)))}
RECORDS = {"warc.gz": 8, "warc": 8, "arc.gz": 4, "arc": 4}  # with the warcinfo / filedesc record


@pytest.mark.parametrize("name", sorted(VALID))
def test_the_valid_archives_give_one_kind_per_record(name):
    out = _check(VALID[name])
    assert len([k for k, _ in out if k is not None]) == RECORDS[name]
    assert "unreadable" not in [k for k, _ in out]


@pytest.mark.fuzz
@given(st.binary(max_size=2000), st.sampled_from(["raw", "gzip", "members"]),
       st.sampled_from([b"", b"WARC/1.0\r\n", b"WARC/1.1\r\nContent-Length: 5\r\n\r\n", b"filedesc://x 0 1 t 9\n",
                        b"http://h/ 1.2.3.4 20040101000000 text/html 12\n"]))
def test_arbitrary_bytes_as_an_archive(data, wrapping, prefix):
    data = prefix + data
    if wrapping == "gzip":
        data = gzip.compress(data)
    elif wrapping == "members":
        data = b"".join(gzip.compress(data[i:i + 97]) for i in range(0, len(data), 97))
    _check(data)


_LENGTH = re.compile(rb"Content-Length: [0-9]+")


@st.composite
def _mutations(draw):
    name = draw(st.sampled_from(sorted(VALID)))
    data = bytearray(VALID[name])
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "delete", "length", "header"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=40))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 200))]
        elif op == "length" and not name.endswith(".gz"):
            found = list(_LENGTH.finditer(bytes(data)))
            if found:
                m = draw(st.sampled_from(found))
                value = draw(st.sampled_from([b"0", b"-1", b"99999999", b"\xc2\xb2", b"1_0", b" 12 ", b"abc"])
                             | st.integers(0, 5000).map(lambda n: str(n).encode()))
                data[m.start():m.end()] = b"Content-Length: " + value
        elif op == "header" and not name.endswith(".gz"):
            line = draw(st.sampled_from([b"WARC-Type: x\r\n", b"WARC-Target-URI: http://[::1/\r\n",
                                         b"Content-Type: image/svg+xml\r\n", b"WARC-Truncated: length\r\n",
                                         b"Transfer-Encoding: chunked\r\n", b"Content-Encoding: gzip\r\n",
                                         b"X-Robots-Tag: noai\r\n", b"\r\n", b": \r\n"]))
            data[at:at] = line
    return bytes(data)


@pytest.mark.fuzz
@given(_mutations())
def test_mutated_archives(data):
    _check(data)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
    | st.sampled_from(["\ud800", "x\udfffy", "http://[::1", "data:x", "/a.jpg", "//h/b.png", IMG_PATH, "noai"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8)


def _mostly(strategy):
    """``strategy`` 9 times in 10, else any JSON value in its place (a list for an object, ...)."""
    return st.integers(0, 9).flatmap(lambda n: _JSON if n == 0 else strategy)


_LINK = st.fixed_dictionaries({"path": _mostly(st.sampled_from([IMG_PATH, "A@/href"])),
                               "url": _JSON, "alt": _JSON, "title": _JSON})
_HEAD = st.fixed_dictionaries({
    "Title": _JSON, "Base": _mostly(st.sampled_from(["", "http://cdn.h/", "http://[x/", "mailto:x"])),
    "Metas": _mostly(st.lists(st.fixed_dictionaries({"name": _mostly(st.sampled_from(["robots", "tdm-reservation"])),
                                                     "content": _JSON}), max_size=2))})
_RESPONSE = st.fixed_dictionaries({
    "Response-Message": _mostly(st.fixed_dictionaries({"Status": _mostly(st.sampled_from(["200", 200, "404"]))})),
    "HTML-Metadata": _mostly(st.fixed_dictionaries({"Head": _mostly(_HEAD), "Links": _mostly(st.lists(
        _mostly(_LINK), max_size=5))}))})
# WAT-shaped JSON with arbitrary values where Common Crawl puts strings, objects and lists.
_WAT_DOCS = st.fixed_dictionaries({"Envelope": _mostly(st.fixed_dictionaries({
    "WARC-Header-Metadata": _mostly(st.fixed_dictionaries({
        "WARC-Type": _mostly(st.just("response")), "WARC-Target-URI": _mostly(st.just("http://h/p.html"))})),
    "Payload-Metadata": _mostly(st.fixed_dictionaries({"HTTP-Response-Metadata": _mostly(_RESPONSE)}))}))})


def _wat_invariants(found):
    page_url, meta = found
    links = meta.get("Links")
    images = [link for link in links if isinstance(link, dict) and link.get("path") == IMG_PATH] \
        if isinstance(links, list) else []
    pairs, rejected = wat_pairs(page_url, meta, spec_with(extract_spec, tracker_patterns=("/tr",)))
    assert len(pairs) + len(rejected) == len(images)
    assert len({p.key for p in pairs} | {r.key for r in rejected}) == len(images)
    assert not [r for r in rejected if r.reason.endswith("internal_error")], [r.detail for r in rejected]
    for p in pairs:
        for text in (p.page_url, p.image_url, p.caption, p.title, p.page_title):
            text.encode("utf-8")  # no lone surrogate reaches the shards
        assert p.image_url.startswith(("http://", "https://")) and len(p.image_url) <= 2000


@pytest.mark.fuzz
@given(_WAT_DOCS)
def test_wat_shaped_json(doc):
    found = parse_wat_payload(json.dumps(doc).encode("utf-8"))
    event("an HTML page" if found else "no page")
    if found is not None:
        _wat_invariants(found)


@pytest.mark.fuzz
@given(st.binary(max_size=400) | _JSON.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_wat_payloads(payload):
    found = parse_wat_payload(payload)
    if found is not None:
        _wat_invariants(found)
    out = _check(ArchiveBuilder(False).metadata("http://h/p.html", payload).getvalue())
    assert [k for k, _ in out if k] in (["wat"], ["metadata"])
