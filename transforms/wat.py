"""Alt-text pairs from Common Crawl WAT metadata records (no Beam import).

Input: the JSON payload of a WAT ``metadata`` record, as Common Crawl writes
them: ``Envelope.WARC-Header-Metadata`` (the described record's type and URI)
and ``Envelope.Payload-Metadata.HTTP-Response-Metadata.HTML-Metadata`` with
``Head.Title``, ``Head.Base``, ``Head.Metas`` and ``Links`` — ``{"path": "IMG@/src",
"url": ..., "alt": ..., "title": ...}`` for each ``<img>``. This is how the largest
public alt-text sets were built: no HTML to parse, the links already extracted.
Output: ``(pairs, rejections)`` like ExtractAltText's — ``extract.data_uri``,
``extract.bad_url`` (not http(s), does not parse, or over ``MAX_URL_CHARS``),
``extract.tracker`` (tracker patterns only: WAT keeps no width/height),
``extract.page_noai`` / ``extract.tdm_reserved`` (the page's ``<meta>`` opt-outs, as
transforms/page_opt_out.py reads them), ``extract.internal_error`` (an unexpected
exception on one link: that link only). Records that describe no HTML response give
nothing (the caller counts them). Keys are ``make_key("wat:" + page URL, n)``: the
n-th IMG link, never the same key as a pair of the same page read from its WARC response.

The payload is remote bytes: any JSON shape is taken (a list where an object is
expected, numbers for text, nesting deep enough to exhaust the parser, lone
surrogates: replaced with U+FFFD so the shards can be written) and gives pairs,
rejections or nothing, never an exception.
"""

from __future__ import annotations

import json
import re
from typing import Optional
from urllib.parse import urlsplit

from pipeline import faults
from pipeline.records import AltPair, DropReason, Rejection, make_key
from transforms.extract_alt_text import ExtractSpec
from transforms.html_text import clean_text
from transforms.image_source import is_tracker
from transforms.page_opt_out import meta_opt_out
from transforms.url_guard import MAX_URL_CHARS, join  # the limit as ExtractAltText: rejected, never cut

IMG_PATH = "IMG@/src"
_SURROGATE = re.compile("[\ud800-\udfff]")


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _text(value) -> str:
    """A JSON value as text: strings as they are (lone surrogates replaced), numbers written, else ""."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def _html_metadata(doc) -> Optional[tuple[str, dict]]:
    """(page URL, HTML-Metadata) of a WAT record describing a 2xx HTML response; else None."""
    envelope = _dict(_dict(doc).get("Envelope"))
    header = _dict(envelope.get("WARC-Header-Metadata"))
    if header.get("WARC-Type", "response") != "response":
        return None
    response = _dict(_dict(envelope.get("Payload-Metadata")).get("HTTP-Response-Metadata"))
    status = _text(_dict(response.get("Response-Message")).get("Status", "200")).strip()
    html = response.get("HTML-Metadata")
    page_url = _text(header.get("WARC-Target-URI")).strip()
    if not status.startswith("2") or not isinstance(html, dict) or not page_url:
        return None
    return page_url, html


def parse_wat_payload(payload: bytes) -> Optional[tuple[str, dict]]:
    """(page URL, HTML-Metadata) of a WAT JSON payload, or None (not JSON, not an HTML page)."""
    try:
        doc = json.loads(payload.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError):  # not JSON; or nested deeper than the parser goes
        return None
    return _html_metadata(doc)


def _page_opt_out(head: dict, spec: ExtractSpec):
    metas = head.get("Metas")
    pairs = ((_text(m.get("name")), _text(m.get("content"))) for m in metas if isinstance(m, dict)) \
        if isinstance(metas, list) else ()
    return meta_opt_out(pairs, spec.bot_token, spec.respect_tdmrep)


def url_too_long(url: str) -> bool:
    """Over ``MAX_URL_CHARS``: rejected whole, never cut (a cut URL is another URL)."""
    return len(url) > MAX_URL_CHARS


def _link_outcome(link: dict, n: int, page_url: str, base: str, title: str, spec: ExtractSpec):
    """The pair, or the rejection, of the n-th IMG link of a page."""
    src = _text(link.get("url")).strip()
    caption = clean_text(_text(link.get("alt")), 2000)
    key = make_key(f"wat:{page_url}", n)
    stub = AltPair(key=key, page_url=page_url, image_url=src[:300], caption=caption, position=n)
    if src.startswith("data:"):
        return Rejection.of(stub, DropReason.EXTRACT_DATA_URI, src[:40])
    absolute = join(base, src) if src else ""
    if url_too_long(absolute):
        return Rejection.of(stub, DropReason.EXTRACT_BAD_URL, f"URL of {len(absolute)} characters")
    if not absolute or urlsplit(absolute).scheme not in ("http", "https"):
        return Rejection.of(stub, DropReason.EXTRACT_BAD_URL, f"src={src[:200]!r}")
    tracker = is_tracker(absolute, None, None, spec.tracker_max_side, spec.tracker_patterns)
    if tracker:
        return Rejection.of(stub, DropReason.EXTRACT_TRACKER, tracker)
    return AltPair(key=key, page_url=page_url, image_url=absolute, caption=caption, position=n,
                   page_title=title, title=clean_text(_text(link.get("title")), 500), extra=(("src_from", "wat"),))


def _isolated_link(link: dict, n: int, page_url: str, base: str, title: str, spec: ExtractSpec):
    """_link_outcome; an unexpected exception is that link's ``extract.internal_error``."""
    try:
        return _link_outcome(link, n, page_url, base, title, spec)
    except Exception as exc:  # noqa: BLE001 — one link's bug costs that link (DESIGN.md §4)
        stub = AltPair(key=make_key(f"wat:{page_url}", n), page_url=page_url,
                       image_url=_text(link.get("url"))[:300], caption="", position=n)
        return Rejection.of(stub, DropReason.EXTRACT_INTERNAL,
                            faults.internal_error(DropReason.EXTRACT_INTERNAL, exc, stub.image_url))


def wat_pairs(page_url: str, html_meta: dict, spec: ExtractSpec) -> tuple[list[AltPair], list[Rejection]]:
    """One pair (or rejection) per ``IMG@/src`` link of a page's HTML-Metadata."""
    head = _dict(html_meta.get("Head"))
    declared_base = _text(head.get("Base")).strip()
    base = (join(page_url, declared_base) or page_url) if declared_base else page_url
    title = clean_text(_text(head.get("Title")), 300)
    links = html_meta.get("Links")
    images = [link for link in (links if isinstance(links, list) else [])
              if isinstance(link, dict) and link.get("path") == IMG_PATH]
    opt_out = _page_opt_out(head, spec) if images else None
    pairs, rejected = [], []
    for n, link in enumerate(images):
        if opt_out is not None:
            stub = AltPair(key=make_key(f"wat:{page_url}", n), page_url=page_url,
                           image_url=_text(link.get("url"))[:300], caption=clean_text(_text(link.get("alt")), 2000),
                           position=n)
            rejected.append(Rejection.of(stub, *opt_out))
            continue
        out = _isolated_link(link, n, page_url, base, title, spec)
        (rejected if isinstance(out, Rejection) else pairs).append(out)
    return pairs, rejected
