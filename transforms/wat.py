"""Alt-text pairs from Common Crawl WAT metadata records (no Beam import).

Input: the JSON payload of a WAT ``metadata`` record, as Common Crawl writes
them: ``Envelope.WARC-Header-Metadata`` (the described record's type and URI)
and ``Envelope.Payload-Metadata.HTTP-Response-Metadata.HTML-Metadata`` with
``Head.Title``, ``Head.Base`` and ``Links`` — ``{"path": "IMG@/src", "url":
..., "alt": ..., "title": ...}`` for each ``<img>``. This is how the largest
public alt-text sets were built: no HTML to parse, the links already extracted.
Output: ``(pairs, rejections)`` like ExtractAltText's — ``extract.data_uri``,
``extract.bad_url``, ``extract.tracker`` (tracker patterns only: WAT keeps no
width/height). Records that describe no HTML response give nothing (the caller
counts them). Keys are ``make_key("wat:" + page URL, n)``: the n-th IMG link,
never the same key as a pair of the same page read from its WARC response.
"""

from __future__ import annotations

import json
from typing import Optional
from urllib.parse import urljoin, urlsplit

from pipeline.records import AltPair, DropReason, Rejection, make_key
from transforms.extract_alt_text import ExtractSpec
from transforms.html_text import clean_text
from transforms.image_source import is_tracker

IMG_PATH = "IMG@/src"


def _html_metadata(doc: dict) -> Optional[tuple[str, dict]]:
    """(page URL, HTML-Metadata) of a WAT record describing a 2xx HTML response; else None."""
    envelope = doc.get("Envelope") if isinstance(doc, dict) else None
    if not isinstance(envelope, dict):
        return None
    header = envelope.get("WARC-Header-Metadata") or {}
    if header.get("WARC-Type", "response") != "response":
        return None
    response = (envelope.get("Payload-Metadata") or {}).get("HTTP-Response-Metadata") or {}
    status = str((response.get("Response-Message") or {}).get("Status", "200"))
    html = response.get("HTML-Metadata")
    page_url = header.get("WARC-Target-URI", "")
    if not status.startswith("2") or not isinstance(html, dict) or not page_url:
        return None
    return page_url, html


def parse_wat_payload(payload: bytes) -> Optional[tuple[str, dict]]:
    """(page URL, HTML-Metadata) of a WAT JSON payload, or None (not JSON, not an HTML page)."""
    try:
        doc = json.loads(payload.decode("utf-8", errors="replace"))
    except json.JSONDecodeError:
        return None
    return _html_metadata(doc)


def wat_pairs(page_url: str, html_meta: dict, spec: ExtractSpec = ExtractSpec()
              ) -> tuple[list[AltPair], list[Rejection]]:
    """One pair (or rejection) per ``IMG@/src`` link of a page's HTML-Metadata."""
    head = html_meta.get("Head") or {}
    base = urljoin(page_url, head.get("Base") or "") if head.get("Base") else page_url
    title = clean_text(head.get("Title"), 300)
    pairs, rejected = [], []
    images = [link for link in html_meta.get("Links") or [] if isinstance(link, dict) and link.get("path") == IMG_PATH]
    for n, link in enumerate(images):
        src = str(link.get("url") or "").strip()
        caption = clean_text(link.get("alt"), 2000)
        key = make_key(f"wat:{page_url}", n)
        stub = AltPair(key=key, page_url=page_url, image_url=src[:300], caption=caption, position=n)
        absolute = urljoin(base, src) if src and not src.startswith("data:") else ""
        if src.startswith("data:"):
            rejected.append(Rejection.of(stub, DropReason.EXTRACT_DATA_URI, src[:40]))
        elif urlsplit(absolute).scheme not in ("http", "https"):
            rejected.append(Rejection.of(stub, DropReason.EXTRACT_BAD_URL, f"src={src[:200]!r}"))
        elif tracker := is_tracker(absolute, None, None, spec.tracker_max_side, spec.tracker_patterns):
            rejected.append(Rejection.of(stub, DropReason.EXTRACT_TRACKER, tracker))
        else:
            pairs.append(AltPair(key=key, page_url=page_url, image_url=absolute, caption=caption, position=n,
                                 page_title=title, title=clean_text(link.get("title"), 500),
                                 extra=(("src_from", "wat"),)))
    return pairs, rejected
