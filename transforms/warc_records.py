"""One web-archive record to what the pipeline uses (no Beam import; transforms/warc.py reads the files).

Input: a warcio record — WARC, or ARC read in warcio's ARC-to-WARC mode (same headers).
Output of ``record_outputs``: ``(tally kind, output or None)`` — exactly one tuple with a
kind per record — plus ``(None, pair or rejection)`` for each <img> link of a WAT record.

- ``html`` / ``html_truncated``: a ``Page`` (2xx HTML response or resource; a page cut
  short — ``WARC-Truncated``, or a record ending before its Content-Length — is still
  parsed: the cut is at its end and lxml recovers).
- ``image``: an ``ArchivedImage`` with the bytes, for a 2xx capture of a raster image we
  decode, complete, within ``fetch.max_bytes`` and without an ``X-Robots-Tag`` noai that
  applies to us (unscoped, or scoped to ``fetch.user_agent``'s product token; every
  value of a repeated header is read).
- Every other 2xx image capture is an ``ArchivedImage`` without bytes that carries the
  reason its pairs are rejected with, without any request (an image the archive holds is
  never fetched live): ``image_noai`` (``fetch.noai``), ``image_too_large``
  (``fetch.too_large``), ``image_truncated`` (``fetch.incomplete_body``),
  ``image_unsupported`` (``fetch.unsupported_format``: SVG, AVIF, ICO),
  ``image_not_image`` (``fetch.not_image``: an image Content-Type over other bytes),
  ``image_unreadable`` (``fetch.bad_response``: its Content-Encoding does not decode).
  A capture is an image when its bytes are one we decode or recognise, or when its
  Content-Type is ``image/*`` (unless the bytes are HTML).
- ``http_error``: ``PageFailure`` ``warc.http_status`` for a non-2xx HTML response (other
  non-2xx captures give nothing: their pairs are downloaded live).
- ``html_too_large``: ``PageFailure`` ``crawl.too_large`` (HTML over ``crawl.max_page_bytes``).
- ``unreadable``: ``PageFailure`` ``warc.unreadable`` (a page whose Content-Encoding does not decode).
- ``revisit``: ``PageFailure`` ``warc.revisit`` for a page, nothing for an image.
- ``wat`` (pairs from transforms/wat.py) / ``metadata`` (a metadata record with none).
- ``bad_url``: a response whose WARC-Target-URI does not parse; ``other``: a 2xx response
  that is neither page nor image; ``warcinfo``, ``request``, ``conversion``, ... (the
  record type, ``unknown`` when it is not a WARC one): nothing.
"""

from __future__ import annotations

import logging
import re
import zlib
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

from warcio.limitreader import LimitReader

from pipeline.records import DETAIL_MAX_CHARS, DropReason, Page, PageFailure
from transforms.crawl import HTML_TYPES, normalize_url
from transforms.extract_alt_text import ExtractSpec
from transforms.fetch import sniff_image_type, sniff_unsupported
from transforms.response_headers import noai_directive
from transforms import warc_warnings
from transforms.wat import parse_wat_payload, wat_pairs

log = logging.getLogger(__name__)

_RECORD_TYPES = frozenset({"warcinfo", "response", "resource", "request", "metadata", "revisit",
                           "conversion", "continuation", "arc_header"})
# Every tally kind a record (or a file failure, transforms/warc_reader.py) can end as: a closed set.
KINDS = frozenset({"html", "html_truncated", "html_too_large", "image", "image_noai", "image_too_large",
                   "image_truncated", "image_unsupported", "image_not_image", "image_unreadable", "http_error",
                   "unreadable", "internal_error", "revisit", "wat", "metadata", "bad_url", "other", "unknown",
                   *_RECORD_TYPES})
_GENERIC_TYPES = ("", "text/plain", "application/octet-stream")
_DRAIN = 1 << 16


@dataclass(frozen=True)
class WarcLimits:
    """What reading archives needs (pipeline/specs.py: ``warc_limits``)."""

    max_page_bytes: int  # crawl.max_page_bytes
    max_image_bytes: int  # fetch.max_bytes
    respect_noai: bool  # fetch.respect_noai
    agent: str  # fetch.user_agent's product token: X-Robots-Tag "wit-curator: noai" is for us


@dataclass(frozen=True)
class ArchivedImage:
    """A 2xx image capture found in an archive (ReadWarc -> UseArchivedImages only).

    With ``reason`` (a ``fetch.*`` DropReason value) it holds no bytes: its pairs are
    rejected with that reason and ``detail``, never fetched live."""

    url: str  # normalised WARC-Target-URI
    data: bytes
    mime: str  # sniffed from the bytes ("" when rejected)
    date: str = ""  # WARC-Date, ISO 8601: the latest capture wins
    status: int = 200
    reason: str = ""
    detail: str = ""


def _target_uri(record) -> str:
    return (record.rec_headers.get_header("WARC-Target-URI") or "").strip().strip("<>")


def _normalised(uri: str) -> Optional[str]:
    """The normalised URI of a capture, None when it does not parse (a bad IPv6 literal or port, no
    host): no page can be resolved against it and no pair can name it."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 — raises ValueError for a port that does not parse
    except ValueError:
        return None
    return normalize_url(uri) if parts.hostname else None


def _looks_html(data: bytes) -> bool:
    head = data[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head


def _status(code) -> int:
    """The HTTP status of a captured response, 0 when it is not three ASCII digits."""
    code = str(code or "").strip()
    return int(code) if re.fullmatch(r"[0-9]{3}", code) else 0


def _http_info(record) -> tuple[int, str, list]:
    """(status, full Content-Type, X-Robots-Tag values) of a response; resource records are 200."""
    headers = record.http_headers
    if headers is None:
        return 200, record.content_type or "", []
    robots_tags = [value for name, value in headers.headers if name.lower() == "x-robots-tag"]
    return _status(headers.get_statuscode()), headers.get_header("Content-Type") or "", robots_tags


def _cut_short(record) -> bool:
    """Did the record's bytes end before its Content-Length? (a truncated file or gzip member)"""
    raw = record.raw_stream
    if not isinstance(raw, LimitReader):
        return False
    while raw.read(_DRAIN):  # what warcio reads next anyway, to find the next record
        pass
    return raw.limit > 0


def _read_payload(record, cap: int) -> Optional[tuple[bytes, bool]]:
    """(up to ``cap`` + 1 payload bytes, transfer and content encodings undone; cut short?),
    None when the payload does not decode."""
    try:
        data = record.content_stream().read(cap + 1)
        cut = len(data) <= cap and _cut_short(record)
        if cut:
            warc_warnings.note("record_cut_short")
        return data, cut
    except (zlib.error, OSError, EOFError, ValueError) as exc:
        log.debug("unreadable payload of %s: %s", _target_uri(record), exc)
        return None


def noai_token(values: list, agent: str) -> Optional[str]:
    """The ``X-Robots-Tag`` noai directive of a capture that applies to ``agent`` (unscoped, or
    scoped to our product token), if any: the live fetch's rule (transforms/response_headers.py)."""
    return noai_directive(values, agent)


def capture_is_image(mime: str, data: bytes) -> bool:
    """Is this 2xx capture an image (its pairs answered from the archive, never fetched live)?"""
    if sniff_image_type(data):
        return True
    if mime in HTML_TYPES or (mime in _GENERIC_TYPES and _looks_html(data)):
        return False
    return mime.startswith("image/") or sniff_unsupported(data) is not None


def image_defect(data: bytes, truncated: str, limits: WarcLimits) -> Optional[tuple[DropReason, str]]:
    """Why a captured image cannot be used as it is: too large or incomplete (None: it can)."""
    if len(data) > limits.max_image_bytes:
        return DropReason.FETCH_TOO_LARGE, f"over fetch.max_bytes ({limits.max_image_bytes})"
    if truncated:
        return DropReason.FETCH_INCOMPLETE, truncated
    return None


def _image_outcome(data: bytes, content_type: str, noai: list, truncated: str, limits: WarcLimits):
    """(kind, reason or None, detail, sniffed MIME) of a 2xx image capture."""
    if limits.respect_noai and (token := noai_token(noai, limits.agent)):
        return "image_noai", DropReason.FETCH_NOAI, f"X-Robots-Tag: {token}", ""
    defect = image_defect(data, truncated, limits)
    if defect:
        kind = "image_too_large" if defect[0] is DropReason.FETCH_TOO_LARGE else "image_truncated"
        return kind, defect[0], defect[1], ""
    mime = sniff_image_type(data)
    if mime:
        return "image", None, "", mime
    other = sniff_unsupported(data)
    if other:
        return "image_unsupported", DropReason.FETCH_UNSUPPORTED, f"{other} ({len(data)} bytes)", ""
    head = f"first bytes {data[:16]!r}" if data else "empty body"
    return "image_not_image", DropReason.FETCH_NOT_IMAGE, f"Content-Type {content_type[:80] or '?'}; {head}", ""


def _archived(record, url: str, status: int, data: bytes, mime: str, reason: Optional[DropReason], detail: str):
    date = (record.rec_headers.get_header("WARC-Date") or "")[:40]
    if reason is None:
        return ArchivedImage(url, data, mime, date, status)
    return ArchivedImage(url, b"", "", date, status, reason.value, f"in the archive: {detail}"[:DETAIL_MAX_CHARS])


def _truncation(record, cut_short: bool) -> str:
    """Why a capture is incomplete ("" when it is not)."""
    declared = record.rec_headers.get_header("WARC-Truncated")
    if declared:
        return f"WARC-Truncated: {declared[:40]}"
    return "the record ends before its Content-Length" if cut_short else ""


def _response_outputs(record, uri: str, limits: WarcLimits):
    url = _normalised(uri)
    if url is None:
        yield "bad_url", None
        return
    status, content_type, noai = _http_info(record)
    mime = content_type.split(";")[0].strip().lower()
    if not 200 <= status < 300:
        htmlish = mime in HTML_TYPES or not mime
        yield "http_error", PageFailure(uri, DropReason.WARC_HTTP_STATUS, f"HTTP {status}") if htmlish else None
        return
    read = _read_payload(record, max(limits.max_page_bytes, limits.max_image_bytes))
    if read is None:
        if mime.startswith("image/"):
            detail = "the payload does not decode (Content-Encoding)"
            yield "image_unreadable", _archived(record, url, status, b"", "", DropReason.FETCH_BAD_RESPONSE, detail)
        else:
            yield "unreadable", PageFailure(uri, DropReason.WARC_UNREADABLE, "payload does not decode")
        return
    data, cut_short = read
    truncated = _truncation(record, cut_short)
    if capture_is_image(mime, data):
        kind, reason, detail, sniffed = _image_outcome(data, content_type, noai, truncated, limits)
        yield kind, _archived(record, url, status, data, sniffed, reason, detail)
    elif mime in HTML_TYPES or (mime in _GENERIC_TYPES and _looks_html(data)):
        if len(data) > limits.max_page_bytes:
            yield "html_too_large", PageFailure(uri, DropReason.CRAWL_TOO_LARGE, f"over {limits.max_page_bytes} bytes")
            return
        yield "html_truncated" if truncated else "html", Page(url=url, html=data, depth=0,
                                                              content_type=content_type, status=status)
    else:
        yield "other", None


def _wat_outputs(record, limits: WarcLimits, spec: ExtractSpec):
    read = _read_payload(record, limits.max_page_bytes)
    data = read[0] if read is not None else None
    found = parse_wat_payload(data) if data is not None and len(data) <= limits.max_page_bytes else None
    if found is None:
        yield "metadata", None
        return
    pairs, rejected = wat_pairs(found[0], found[1], spec)
    yield "wat", None
    for out in (*pairs, *rejected):
        yield None, out


def record_kind(rec_type) -> str:
    """A record type as a tally kind: the WARC types, else ``unknown`` (the set of kinds stays closed)."""
    return rec_type if rec_type in _RECORD_TYPES else "unknown"


def record_outputs(record, limits: WarcLimits, spec: ExtractSpec):
    """(tally kind or None, record or None) for one WARC record."""
    uri = _target_uri(record)
    rec_type = record.rec_type
    if rec_type == "revisit":
        _, content_type, _ = _http_info(record)
        is_image = content_type.lower().startswith("image/")
        yield "revisit", None if is_image else PageFailure(uri, DropReason.WARC_REVISIT, (
            record.rec_headers.get_header("WARC-Refers-To-Target-URI") or "")[:DETAIL_MAX_CHARS])
    elif rec_type in ("response", "resource") and uri.lower().startswith(("http:", "https:")):
        yield from _response_outputs(record, uri, limits)
    elif rec_type == "metadata" and (record.content_type or "").startswith("application/json"):
        yield from _wat_outputs(record, limits, spec)
    else:
        yield record_kind(rec_type), None
