"""transforms.warc, warc_reader, warc_records and warc_warnings: archive files to pages, archived
image captures and tallies; ARC files; whole-file gzip; offsets; warnings; per-record isolation."""

import collections
import gzip
import io
import random

import pytest

from pipeline.records import AltPair, DropReason, FetchedImage, Page, PageFailure, Rejection
from pipeline.specs import extract_spec, warc_limits
from tests.default_specs import spec_with
from tests.transforms.warc_fixtures import AVIF, SVG, ArcBuilder, ArchiveBuilder, gzipped, jpeg
from transforms import warc_records
from transforms.warc import (ArchivedImage, WarcInputError, archived_outcome, best_capture, expand_warc_paths, read_file, read_warc)

PAGE = b"<html><body><img src='a.jpg' alt='a red square'></body></html>"


def _read(data: bytes, limits=spec_with(warc_limits), spec=spec_with(extract_spec), warnings=None):
    return list(read_warc(io.BytesIO(data), "mem.warc", limits, spec, warnings))


def _summary(outputs):
    return [(kind, type(out).__name__ if out is not None else None) for kind, out in outputs]


def _rejected(out) -> list:
    return [(kind, o.reason, o.detail) for kind, o in out if isinstance(o, ArchivedImage) and o.reason]


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
        ("other", None), ("image_truncated", "ArchivedImage"),
        ("html_truncated", "Page"),                               # a cut page is still parsed
        ("image_noai", "ArchivedImage"), ("html", "Page")]        # HTML sniffed behind a generic type
    pages = [o for _, o in out if isinstance(o, Page)]
    assert [p.html for p in pages] == [PAGE, PAGE, PAGE[:40], PAGE]
    assert pages[0].content_type == "text/html; charset=utf-8" and pages[0].depth == 0
    archived = out[3][1]
    assert (archived.url, archived.data, archived.mime, archived.reason) == ("http://h/a.jpg", image, "image/jpeg", "")
    failures = [(o.url, o.reason) for _, o in out if isinstance(o, PageFailure)]
    assert failures == [("http://h/old.html", DropReason.WARC_REVISIT), ("http://h/gone.html", DropReason.WARC_HTTP_STATUS)]
    assert _rejected(out) == [
        ("image_truncated", "fetch.incomplete_body", "in the archive: WARC-Truncated: length"),
        ("image_noai", "fetch.noai", "in the archive: X-Robots-Tag: noai")]
    assert all(o.data == b"" and o.url.startswith("http://h/") for _, o in out if isinstance(o, ArchivedImage) and o.reason)


def test_every_image_capture_has_an_archived_outcome():
    """Whatever the format: an image the archive holds is answered from it (never downloaded live)."""
    b = (ArchiveBuilder().response("http://h/logo.svg", SVG, "image/svg+xml")
         .response("http://h/untyped.svg", SVG, "application/octet-stream")   # recognised from the bytes
         .response("http://h/photo.avif", AVIF, "image/avif")
         .response("http://h/soft404.jpg", b"<p>sorry, moved</p>", "image/jpeg")
         .response("http://h/empty.png", b"", "image/png")
         .response("http://h/x.jpg", jpeg((1, 2, 3)), "text/html")           # the bytes decide, as live
         .response("http://h/page.xhtml", b"<?xml version='1.0'?><html><body><svg/></body></html>",
                   "application/xhtml+xml"))
    out = _read(b.getvalue())
    assert [k for k, _ in out] == ["image_unsupported", "image_unsupported", "image_unsupported", "image_not_image",
                                   "image_not_image", "image", "html"]
    assert [(o.reason, o.detail) for _, o in out[:5]] == [
        ("fetch.unsupported_format", f"in the archive: svg ({len(SVG)} bytes)"),
        ("fetch.unsupported_format", f"in the archive: svg ({len(SVG)} bytes)"),
        ("fetch.unsupported_format", f"in the archive: avif ({len(AVIF)} bytes)"),
        ("fetch.not_image", "in the archive: Content-Type image/jpeg; first bytes b'<p>sorry, moved<'"),
        ("fetch.not_image", "in the archive: Content-Type image/png; empty body")]


def test_noai_is_ignored_when_not_respected_and_caps_apply():
    image = jpeg((0, 0, 200))
    b = (ArchiveBuilder().response("http://h/noai.jpg", image, "image/jpeg", extra_headers=[("X-Robots-Tag", "noai")])
         .response("http://h/big.html", PAGE + b" " * 100).response("http://h/big.jpg", image, "image/jpeg"))
    limits = spec_with(warc_limits, max_page_bytes=len(PAGE) + 10, max_image_bytes=len(image), respect_noai=False)
    out = _read(b.getvalue(), limits)
    assert _summary(out) == [("image", "ArchivedImage"), ("html_too_large", "PageFailure"), ("image", "ArchivedImage")]
    assert out[1][1].reason == DropReason.CRAWL_TOO_LARGE and not out[0][1].reason
    small = spec_with(warc_limits, max_page_bytes=1000, max_image_bytes=100)
    out = _read(b.getvalue(), small)
    assert _rejected(out) == [("image_noai", "fetch.noai", "in the archive: X-Robots-Tag: noai"),
                              ("image_too_large", "fetch.too_large", "in the archive: over fetch.max_bytes (100)")]


def test_archived_noai_is_scoped_to_our_user_agent():
    image = jpeg((9, 9, 9))
    b = ArchiveBuilder()
    for n, headers in enumerate([[("X-Robots-Tag", "otherbot: noai")], [("X-Robots-Tag", "wit-curator: noimageai")],
                                 [("X-Robots-Tag", "index"), ("X-Robots-Tag", "noai")],
                                 [("X-Robots-Tag", "mybot: noai, index")]]):
        b.response(f"http://h/{n}.jpg", image, "image/jpeg", extra_headers=headers)
    assert [k for k, _ in _read(b.getvalue())] == ["image", "image_noai", "image_noai", "image"]
    assert [k for k, _ in _read(b.getvalue(), spec_with(warc_limits, agent="mybot"))] == ["image", "image", "image_noai",
                                                                              "image_noai"]


def test_an_image_whose_encoding_does_not_decode_is_rejected_not_a_page_failure():
    b = ArchiveBuilder().response("http://h/a.jpg", b"\x1f\x8b\x08\x00not gzip at all" * 3, "image/jpeg",
                                  extra_headers=[("Content-Encoding", "gzip")])
    out = _read(b.getvalue())
    assert [k for k, _ in out] in (["image_unreadable"], ["image_not_image"])
    assert out[0][1].reason in ("fetch.bad_response", "fetch.not_image")


@pytest.mark.parametrize("gzip_records", [True, False])
def test_arc_files_are_read(gzip_records):
    image = jpeg((10, 200, 10))
    arc = (ArcBuilder(gzip_records).response("http://h/p.html", PAGE, date="20040518015810")
           .response("http://h/a.jpg", image, "image/jpeg")
           .response("http://h/gone.html", b"<html>gone</html>", status=404)
           .response("dns:h", b"192.0.2.1", "text/dns"))
    warnings = collections.Counter()
    out = _read(arc.getvalue(), warnings=warnings)
    assert _summary(out) == [("warcinfo", None), ("html", "Page"), ("image", "ArchivedImage"),
                             ("http_error", "PageFailure"), ("response", None)]
    page, archived = out[1][1], out[2][1]
    assert (page.url, page.html, page.status) == ("http://h/p.html", PAGE, 200)
    assert (archived.url, archived.data, archived.date) == ("http://h/a.jpg", image, "2004-05-18T01:58:10Z")
    assert not warnings


def test_arc_and_warc_files_are_found_and_read_by_content(tmp_path):
    (tmp_path / "old.arc.gz").write_bytes(ArcBuilder().response("http://h/1.html", PAGE).getvalue())
    (tmp_path / "old.arc").write_bytes(ArcBuilder(False).response("http://h/2.html", PAGE).getvalue())
    (tmp_path / "new.warc.gz").write_bytes(ArchiveBuilder().response("http://h/3.html", PAGE).getvalue())
    (tmp_path / "misnamed.dat").write_bytes(ArcBuilder().response("http://h/4.html", PAGE).getvalue())
    pages = []
    for path in expand_warc_paths(str(tmp_path / "*")):
        pages += [o.url for k, o in read_file(path, spec_with(warc_limits), spec_with(extract_spec), collections.Counter()) if k == "html"]
    assert sorted(pages) == ["http://h/1.html", "http://h/2.html", "http://h/3.html", "http://h/4.html"]


@pytest.mark.parametrize("builder", [lambda: ArchiveBuilder(False), lambda: ArcBuilder(False)])
def test_a_whole_file_gzip_is_read_whole(builder):
    b = builder()
    for n in range(4):
        b.response(f"http://h/{n}.html", PAGE)
    warnings = collections.Counter()
    out = _read(gzip.compress(b.getvalue()), warnings=warnings)
    assert [o.url for _, o in out if isinstance(o, Page)] == [f"http://h/{n}.html" for n in range(4)]
    assert warnings == {"gzip_not_per_record": 1}


def _records(*urls, gz=True) -> list[bytes]:
    return [ArchiveBuilder(gz).response(u, PAGE).getvalue() for u in urls]


@pytest.mark.parametrize("gz", [True, False])
def test_unreadable_gives_the_file_the_offset_and_the_error_and_reading_resumes(gz):
    one, two, three = _records("http://h/1.html", "http://h/2.html", "http://h/3.html", gz=gz)
    bad = b"\x1f\x8b\x08\x00garbage that is no gzip member" if gz else b"XWARC/1.0 garbage\r\n\r\n"
    out = _read(one + bad + two + three)
    assert [k for k, _ in out] == ["html", "unreadable", "html", "html"]
    failure = out[1][1]
    assert failure.reason == DropReason.WARC_UNREADABLE and failure.url == "mem.warc"
    assert failure.detail.startswith(
        f"mem.warc: offset {len(one)}: skipped to offset {len(one) + len(bad)}: ArchiveLoadFailed: 'Invalid WARC record")


def test_a_gzip_member_that_stops_decoding_is_reported_and_reading_resumes():
    noise = random.Random(7).randbytes(60000)  # does not compress: the member spans warcio's read blocks
    first = ArchiveBuilder().response("http://h/big.html", b"<html>" + noise + b"</html>").getvalue()
    rest = b"".join(_records("http://h/2.html", "http://h/3.html"))
    broken = first[:30000] + bytes(300) + first[30300:]
    warnings = collections.Counter()
    out = _read(broken + rest, warnings=warnings)
    assert [k for k, _ in out] == ["html_truncated", "unreadable", "html", "html"]
    assert out[1][1].detail == (f"mem.warc: offset 0: skipped to offset {len(first)}: "
                                "ArchiveLoadFailed: 'a gzip member stops decoding part way'")
    assert warnings == {"bad_compressed_data": 1, "record_cut_short": 1}


def test_a_file_cut_inside_a_record_is_reported():
    one, two = _records("http://h/1.html", "http://h/2.html")
    out = _read(one + two[:60])                         # the download stopped inside the second member
    assert [k for k, _ in out] == ["html", "unreadable"]
    assert out[1][1].detail.startswith(f"mem.warc: offset {len(one)}: ") and "ends inside a record" in out[1][1].detail


def test_a_record_cut_short_is_truncated_and_counted():
    image = jpeg((5, 5, 5))
    data = ArchiveBuilder(False).response("http://h/p.html", PAGE).response("http://h/a.jpg", image, "image/jpeg").getvalue()
    warnings = collections.Counter()
    out = _read(data[:-200], warnings=warnings)         # the last record ends before its Content-Length
    assert [k for k, _ in out] == ["html", "image_truncated"]
    assert out[1][1].reason == "fetch.incomplete_body" and "ends before its Content-Length" in out[1][1].detail
    assert warnings == {"record_cut_short": 1}


def test_warcio_warnings_are_counted_not_printed(capfd):
    plain = b"".join(_records("http://h/1.html", "http://h/a b.html", "http://h/3.html", gz=False))
    at = plain.index(b"Content-Length: ") + len(b"Content-Length: ")
    declared = int(plain[at:plain.index(b"\r\n", at)])
    bad = plain[:at] + str(declared - 4).encode() + plain[plain.index(b"\r\n", at):]
    warnings = collections.Counter()
    out = _read(bad, warnings=warnings)
    assert [k for k, _ in out] == ["html", "html", "html"]
    assert out[1][1].url == "http://h/a%20b.html"
    assert warnings == {"content_length_mismatch": 1, "target_uri_spaces": 1}
    captured = capfd.readouterr()
    assert "WARNING" not in captured.err and "Replacing spaces" not in captured.err and captured.out == ""


def test_corrupt_or_foreign_input_is_a_failure_not_a_crash():
    assert _summary(_read(b"")) == []
    out = _read(b"not a warc at all\r\n\r\n")
    assert [k for k, _ in out] == ["unreadable"] and "offset 0" in out[0][1].detail
    assert [k for k, _ in _read(b"\x1f\x8b\x08\x00\x00\x00")] == ["unreadable"]


def test_an_unexpected_exception_on_one_record_costs_that_record_only(monkeypatch):
    real = warc_records._response_outputs

    def buggy(record, uri, limits):
        if uri.endswith("/2.html"):
            raise RuntimeError("a bug met by one record")
        return real(record, uri, limits)

    monkeypatch.setattr(warc_records, "_response_outputs", buggy)
    out = _read(b"".join(_records("http://h/1.html", "http://h/2.html", "http://h/3.html")))
    assert [k for k, _ in out] == ["html", "internal_error", "html"]
    failure = out[1][1]
    assert (failure.url, failure.reason) == ("http://h/2.html", DropReason.WARC_INTERNAL)
    assert failure.detail.startswith("RuntimeError: a bug met by one record @ ") and len(failure.detail) <= 300


def test_an_unexpected_exception_reading_the_file_is_one_failure(monkeypatch):
    from warcio.recordloader import ArcWarcRecordLoader
    real, calls = ArcWarcRecordLoader.parse_record_stream, []

    def buggy(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise TypeError("a bug in the reader")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ArcWarcRecordLoader, "parse_record_stream", buggy)
    one, two, three = _records("http://h/1.html", "http://h/2.html", "http://h/3.html")
    out = _read(one + two + three)
    assert [k for k, _ in out] == ["html", "internal_error", "html"]     # resumed at the next record
    assert out[1][1].reason == DropReason.WARC_INTERNAL and "TypeError: a bug in the reader" in out[1][1].detail
    assert out[1][1].detail.startswith(f"mem.warc: offset {len(one)}: skipped to offset {len(one) + len(two)}")


def test_a_record_warcio_itself_trips_on_is_unreadable_and_reading_resumes():
    """Found by the fuzz tests: a response record without WARC-Target-URI makes warcio's loader
    raise AttributeError (``None.startswith``) - malformed input, not a bug of ours."""
    one, two, three = _records("http://h/1.html", "http://h/2.html", "http://h/3.html", gz=False)
    two = two.replace(b"WARC-Target-URI: http://h/2.html\r\n", b"")
    out = _read(one + two + three)
    assert [k for k, _ in out] == ["html", "unreadable", "html"]
    assert out[1][1].reason == DropReason.WARC_UNREADABLE and "AttributeError" in out[1][1].detail
    assert out[1][1].detail.startswith(f"mem.warc: offset {len(one)}: skipped to offset {len(one) + len(two)}: ")


def test_a_stream_that_cannot_seek_is_read_as_a_warc():
    class Stream:
        def __init__(self, data):
            self.inner = io.BytesIO(data)

        def read(self, n=-1):
            return self.inner.read(n)

        def seekable(self):
            return False

    data = b"".join(_records("http://h/1.html", "http://h/2.html"))
    out = list(read_warc(Stream(data), "pipe", spec_with(warc_limits), spec_with(extract_spec)))
    assert [k for k, _ in out] == ["html", "html"]
    assert [k for k, _ in read_warc(Stream(data[:-30] + b"junk" + data), "pipe", spec_with(warc_limits), spec_with(extract_spec))][-1] == "unreadable"


def test_a_file_that_cannot_be_opened_is_one_failure(tmp_path):
    out = list(read_file(str(tmp_path / "gone.warc.gz"), spec_with(warc_limits), spec_with(extract_spec), collections.Counter()))
    assert [k for k, _ in out] == ["unreadable"]
    assert out[0][1].reason == DropReason.WARC_UNREADABLE and out[0][1].detail.startswith("gone.warc.gz: cannot open")


def test_record_kinds_stay_a_closed_set():
    from warcio.warcwriter import WARCWriter
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=False)
    writer.write_record(writer.create_warc_record("http://h/", "x-custom-" + "a" * 50, payload=io.BytesIO(b"x")))
    writer.write_record(writer.create_warc_record("http://[::1/p", "resource", payload=io.BytesIO(PAGE),
                                                  warc_content_type="text/html"))
    assert [k for k, _ in _read(buf.getvalue())] == ["unknown", "bad_url"]


def _capture(date, data=b"x", reason="", status=200):
    return ArchivedImage("http://h/a.jpg", data, "image/jpeg" if not reason else "", date, status, reason,
                         f"in the archive: {reason}" if reason else "")


def test_best_capture_is_the_latest_usable_one_and_deterministic():
    old, new = _capture("2023-01-01T00:00:00Z", b"old"), _capture("2024-01-01T00:00:00Z", b"new")
    cut = _capture("2025-01-01T00:00:00Z", reason="fetch.incomplete_body")
    noai = _capture("2025-06-01T00:00:00Z", reason="fetch.noai")
    frac = _capture("2024-01-01T00:00:00.5Z", b"frac")  # after "…:00Z" though it sorts before as text
    assert best_capture([old, new, cut]) is new                      # a broken latest capture loses
    assert best_capture([cut]) is cut                                # ... unless nothing better exists
    assert best_capture([old, noai, new]) is noai                    # the latest opt-out stands
    assert best_capture([new, frac, old]) is frac
    twins = [_capture("2024-01-01T00:00:00Z", b"bbb"), _capture("2024-01-01T00:00:00Z", b"aaa")]
    assert best_capture(twins) == best_capture(twins[::-1])
    assert best_capture([]) is None


def test_archived_outcome():
    pair = AltPair(key="k", page_url="http://h/", image_url="http://h/a.jpg", caption="c")
    fetched = archived_outcome(pair, _capture("2024", b"bytes"))
    assert isinstance(fetched, FetchedImage) and (fetched.data, fetched.final_url) == (b"bytes", "http://h/a.jpg")
    rejected = archived_outcome(pair, _capture("2024", reason="fetch.unsupported_format"))
    assert isinstance(rejected, Rejection)
    assert (rejected.stage, rejected.reason, rejected.detail) == ("fetch", "fetch.unsupported_format",
                                                                  "in the archive: fetch.unsupported_format")


def test_expand_warc_paths(tmp_path):
    (tmp_path / "b.warc.gz").write_bytes(b"")
    (tmp_path / "a.warc").write_bytes(b"")
    (tmp_path / "c.arc.gz").write_bytes(b"")
    assert [p.rsplit("/", 1)[1] for p in expand_warc_paths(str(tmp_path / "*"))] == ["a.warc", "b.warc.gz", "c.arc.gz"]
    with pytest.raises(WarcInputError):
        expand_warc_paths(str(tmp_path / "none-*.warc"))


def test_archived_image_is_immutable():
    with pytest.raises(AttributeError):
        ArchivedImage("u", b"", "image/jpeg").url = "x"
