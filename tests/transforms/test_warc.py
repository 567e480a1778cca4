"""transforms.warc and transforms.wat: records to pages, archived images, WAT pairs and tallies."""

import io

import pytest

from pipeline.records import AltPair, DropReason, Page, PageFailure, Rejection
from tests.transforms.warc_fixtures import ArchiveBuilder, gzipped, jpeg
from transforms.extract_alt_text import ExtractSpec
from transforms.warc import ArchivedImage, WarcInputError, WarcLimits, expand_warc_paths, read_warc
from transforms.wat import parse_wat_payload, wat_pairs

PAGE = b"<html><body><img src='a.jpg' alt='a red square'></body></html>"


def _read(data: bytes, limits=WarcLimits(), spec=ExtractSpec()):
    return list(read_warc(io.BytesIO(data), "mem.warc", limits, spec))


def _summary(outputs):
    return [(kind, type(out).__name__ if out is not None else None) for kind, out in outputs]


@pytest.mark.parametrize("gzip_records", [True, False])
def test_every_record_has_one_kind(gzip_records):
    image = jpeg((200, 30, 30))
    b = (ArchiveBuilder(gzip_records).warcinfo().request("http://h/p.html").response("http://h/p.html", PAGE)
         .response("http://h/a.jpg", image, "image/jpeg")
         .revisit("http://h/old.html").revisit("http://h/old.jpg", "image/jpeg")
         .response("http://h/gone.html", b"<html>not here</html>", status=404)
         .response("http://h/gone.jpg", b"", "image/jpeg", status=404)
         .response("http://h/z.html", gzipped(PAGE), extra_headers=[("Content-Encoding", "gzip")])
         .response("http://h/doc.pdf", b"%PDF-1.4 ...", "application/pdf")
         .response("http://h/t.jpg", image[:200], "image/jpeg", warc_headers={"WARC-Truncated": "length"})
         .response("http://h/cut.html", PAGE[:40], warc_headers={"WARC-Truncated": "time"})
         .response("http://h/noai.jpg", image, "image/jpeg", extra_headers=[("X-Robots-Tag", "noai")])
         .response("http://h/untyped", PAGE, "application/octet-stream"))
    out = _read(b.getvalue())
    assert _summary(out) == [
        ("warcinfo", None), ("request", None), ("html", "Page"), ("image", "ArchivedImage"),
        ("revisit", "PageFailure"), ("revisit", None),            # a revisit of an image is no page
        ("http_error", "PageFailure"), ("http_error", None),
        ("html", "Page"),                                         # Content-Encoding: gzip undone
        ("other", None), ("image_truncated", None),
        ("html_truncated", "Page"),                               # a cut page is still parsed
        ("image_noai", None), ("html", "Page")]                   # HTML sniffed behind a generic type
    pages = [o for _, o in out if isinstance(o, Page)]
    assert [p.html for p in pages] == [PAGE, PAGE, PAGE[:40], PAGE]
    assert pages[0].content_type == "text/html; charset=utf-8" and pages[0].depth == 0
    archived = out[3][1]
    assert (archived.url, archived.data, archived.mime) == ("http://h/a.jpg", image, "image/jpeg")
    failures = [(o.url, o.reason) for _, o in out if isinstance(o, PageFailure)]
    assert failures == [("http://h/old.html", DropReason.WARC_REVISIT), ("http://h/gone.html", DropReason.WARC_HTTP_STATUS)]


def test_noai_is_ignored_when_not_respected_and_caps_apply():
    image = jpeg((0, 0, 200))
    b = (ArchiveBuilder().response("http://h/noai.jpg", image, "image/jpeg", extra_headers=[("X-Robots-Tag", "noai")])
         .response("http://h/big.html", PAGE + b" " * 100).response("http://h/big.jpg", image, "image/jpeg"))
    limits = WarcLimits(max_page_bytes=len(PAGE) + 10, max_image_bytes=len(image), respect_noai=False)
    out = _read(b.getvalue(), limits)
    assert _summary(out) == [("image", "ArchivedImage"), ("html_too_large", "PageFailure"), ("image", "ArchivedImage")]
    assert out[1][1].reason == DropReason.CRAWL_TOO_LARGE
    small = WarcLimits(max_page_bytes=1000, max_image_bytes=100)
    assert _summary(_read(b.getvalue(), small))[2] == ("image_too_large", None)


def test_corrupt_archive_is_a_failure_not_a_crash():
    good = ArchiveBuilder().response("http://h/p.html", PAGE).getvalue()
    out = _read(good + b"\x1f\x8b\x08\x00garbage that is no gzip member" + good)
    assert _summary(out)[0] == ("html", "Page")
    assert out[-1][0] == "unreadable" and out[-1][1].reason == DropReason.WARC_UNREADABLE
    assert out[-1][1].url == "mem.warc"
    assert _summary(_read(b"")) == []
    assert all(not isinstance(o, Page) for _, o in _read(b"not a warc at all\r\n\r\n"))


def test_wat_records_give_pairs():
    links = [{"path": "A@/href", "url": "/about", "text": "About"},
             {"path": "IMG@/src", "url": "img/cat.jpg", "alt": " A grey  cat asleep ", "title": "Cat"},
             {"path": "IMG@/src", "url": "data:image/gif;base64,R0lG", "alt": "inline"},
             {"path": "IMG@/src", "url": "//www.facebook.com/tr?id=1", "alt": ""},
             {"path": "IMG@/src", "url": "/dog.jpg"},
             {"path": "IMG@/src", "url": "mailto:x@y", "alt": "mail"}]
    b = (ArchiveBuilder(False).wat("http://h/pets/index.html", links, title="Pets", base="http://cdn.h/p/")
         .wat("http://h/req", [], warc_type="request").wat("http://h/404", links, status="404"))
    spec = ExtractSpec(tracker_patterns=("facebook.com/tr",))
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
    assert parse_wat_payload(b'{"Envelope": {"Payload-Metadata": {}}}') is None
    assert wat_pairs("http://h/", {"Links": None}) == ([], [])


def test_expand_warc_paths(tmp_path):
    (tmp_path / "b.warc.gz").write_bytes(b"")
    (tmp_path / "a.warc").write_bytes(b"")
    assert [p.rsplit("/", 1)[1] for p in expand_warc_paths(str(tmp_path / "*"))] == ["a.warc", "b.warc.gz"]
    with pytest.raises(WarcInputError):
        expand_warc_paths(str(tmp_path / "none-*.warc"))


def test_archived_image_is_immutable():
    with pytest.raises(AttributeError):
        ArchivedImage("u", b"", "image/jpeg").url = "x"
