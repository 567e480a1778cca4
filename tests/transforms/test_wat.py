"""transforms.wat: Common Crawl WAT records to pairs and rejections, whatever the JSON holds."""

import io
import json

from pipeline.records import AltPair, DropReason, Rejection
from pipeline.specs import extract_spec, warc_limits
from tests.default_specs import spec_with
from tests.transforms.warc_fixtures import ArchiveBuilder
from transforms import wat
from transforms.warc import read_warc
from transforms.wat import parse_wat_payload, wat_pairs


def _read(data: bytes, spec=spec_with(extract_spec)):
    return list(read_warc(io.BytesIO(data), "mem.wat", spec_with(warc_limits), spec))


def test_wat_records_give_pairs():
    links = [{"path": "A@/href", "url": "/about", "text": "About"},
             {"path": "IMG@/src", "url": "img/cat.jpg", "alt": " A grey  cat asleep ", "title": "Cat"},
             {"path": "IMG@/src", "url": "data:image/gif;base64,R0lG", "alt": "inline"},
             {"path": "IMG@/src", "url": "//www.facebook.com/tr?id=1", "alt": ""},
             {"path": "IMG@/src", "url": "/dog.jpg"},
             {"path": "IMG@/src", "url": "mailto:x@y", "alt": "mail"}]
    b = (ArchiveBuilder(False).wat("http://h/pets/index.html", links, title="Pets", base="http://cdn.h/p/")
         .wat("http://h/req", [], warc_type="request").wat("http://h/404", links, status="404"))
    spec = spec_with(extract_spec, tracker_patterns=("facebook.com/tr",))
    out = _read(b.getvalue(), spec=spec)
    assert [k for k, _ in out if k] == ["wat", "metadata", "metadata"]
    pairs = [o for _, o in out if isinstance(o, AltPair)]
    rejected = [o for _, o in out if isinstance(o, Rejection)]
    assert [(p.position, p.image_url, p.caption, p.title, p.page_title) for p in pairs] == [
        (0, "http://cdn.h/p/img/cat.jpg", "A grey cat asleep", "Cat", "Pets"),
        (3, "http://cdn.h/dog.jpg", "", "", "Pets")]
    assert [(r.reason, r.caption) for r in rejected] == [
        (DropReason.EXTRACT_DATA_URI.value, "inline"), (DropReason.EXTRACT_TRACKER.value, ""),
        (DropReason.EXTRACT_BAD_URL.value, "mail")]
    assert len({p.key for p in pairs} | {r.key for r in rejected}) == 5
    assert dict(pairs[0].extra) == {"src_from": "wat"}


def test_wat_payload_parsing_is_tolerant():
    assert parse_wat_payload(b"{not json") is None
    assert parse_wat_payload(b"[]") is None
    assert parse_wat_payload(b"null") is None
    assert parse_wat_payload(b'{"Envelope": {"Payload-Metadata": {}}}') is None
    assert parse_wat_payload(b"[" * 100_000 + b"]" * 100_000) is None          # deeper than json goes
    assert parse_wat_payload(b'{"Envelope": {"WARC-Header-Metadata": "x", "Payload-Metadata": []}}') is None
    assert parse_wat_payload(b'{"Envelope": {"WARC-Header-Metadata": {"WARC-Target-URI": 7}}}') is None
    assert wat_pairs("http://h/", {"Links": None}, spec_with(extract_spec)) == ([], [])
    assert wat_pairs("http://h/", {"Links": {"path": "IMG@/src"}, "Head": []}, spec_with(extract_spec)) == ([], [])


def _pairs(links, head=None, spec=spec_with(extract_spec)):
    return wat_pairs("http://h/page.html", {"Head": head or {}, "Links": links}, spec)


def test_hostile_link_values_end_as_pairs_or_rejections():
    links = [{"path": "IMG@/src", "url": "http://[::1/x.jpg", "alt": "bad ipv6"},
             {"path": "IMG@/src", "url": "/" + "a" * 2100 + ".jpg", "alt": "too long"},
             {"path": "IMG@/src", "url": ["not", "text"], "alt": "a list"},
             {"path": "IMG@/src", "url": "/ok.jpg", "alt": 42, "title": {"x": 1}},
             {"path": "IMG@/src", "url": "/s.jpg", "alt": "lone \ud800 surrogate"}]
    pairs, rejected = _pairs(links, head={"Base": "http://[oops/", "Title": ["x"]})
    assert [(r.caption, r.reason) for r in rejected] == [
        ("bad ipv6", "extract.bad_url"), ("too long", "extract.bad_url"), ("a list", "extract.bad_url")]
    assert "2" in rejected[1].detail and len(rejected[1].image_url) <= 300
    assert [(p.image_url, p.caption, p.title, p.page_title) for p in pairs] == [
        ("http://h/ok.jpg", "42", "", ""), ("http://h/s.jpg", "lone \ufffd surrogate", "", "")]
    pairs[1].caption.encode("utf-8")                              # writable as UTF-8


def test_page_opt_outs_in_wat_metas_reject_every_image():
    links = [{"path": "IMG@/src", "url": "/a.jpg", "alt": "a"}, {"path": "IMG@/src", "url": "/b.jpg", "alt": "b"}]
    metas = [{"name": "viewport", "content": "width=device-width"}, {"name": "ROBOTS", "content": "index, NoAI"}]
    pairs, rejected = _pairs(links, head={"Metas": metas})
    assert pairs == [] and [(r.reason, r.detail, r.caption) for r in rejected] == [
        ("extract.page_noai", "meta robots: noai", "a"), ("extract.page_noai", "meta robots: noai", "b")]
    tdm = [{"name": "tdm-reservation", "content": "1"}]
    assert [r.reason for r in _pairs(links, head={"Metas": tdm})[1]] == ["extract.tdm_reserved"] * 2
    assert len(_pairs(links, head={"Metas": tdm}, spec=spec_with(extract_spec, respect_tdmrep=False))[0]) == 2
    other_bot = [{"name": "googlebot", "content": "noai"}, "not a dict"]
    assert len(_pairs(links, head={"Metas": other_bot})[0]) == 2


def test_an_unexpected_exception_on_one_link_costs_that_link(monkeypatch):
    real = wat.is_tracker

    def buggy(url, *args):
        if url.endswith("/b.jpg"):
            raise RuntimeError("tracker check bug")
        return real(url, *args)

    monkeypatch.setattr(wat, "is_tracker", buggy)
    links = [{"path": "IMG@/src", "url": u, "alt": u} for u in ("/a.jpg", "/b.jpg", "/c.jpg")]
    pairs, rejected = _pairs(links)
    assert [p.image_url for p in pairs] == ["http://h/a.jpg", "http://h/c.jpg"]
    assert [(r.image_url, r.reason) for r in rejected] == [("/b.jpg", "extract.internal_error")]
    assert rejected[0].detail.startswith("RuntimeError: tracker check bug @ ")


def test_a_wat_record_that_breaks_is_one_page_failure(monkeypatch):
    from transforms import warc_records

    def buggy(*_args):
        raise KeyError("whole record")

    monkeypatch.setattr(warc_records, "wat_pairs", buggy)
    b = ArchiveBuilder(False).wat("http://h/p.html", [{"path": "IMG@/src", "url": "/a.jpg"}]).wat("http://h/q", [])
    out = _read(b.getvalue())
    assert [k for k, _ in out] == ["internal_error", "internal_error"]
    assert out[0][1].reason == DropReason.WARC_INTERNAL and out[0][1].url == "http://h/p.html"


def test_wat_json_written_by_common_crawl_tools_round_trips():
    doc = {"Envelope": {"WARC-Header-Metadata": {"WARC-Type": "response", "WARC-Target-URI": "http://h/"},
                        "Payload-Metadata": {"HTTP-Response-Metadata": {
                            "Response-Message": {"Status": 200},
                            "HTML-Metadata": {"Head": {"Title": "T"}, "Links": []}}}}}
    assert parse_wat_payload(json.dumps(doc).encode()) == ("http://h/", {"Head": {"Title": "T"}, "Links": []})
