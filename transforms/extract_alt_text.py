"""ExtractAltText: ``<img>`` alt-text pairs with their context, from HTML pages.

Input: ``Page`` records. Output: ``(pairs, rejected)`` — one ``AltPair`` per
``<img>`` (missing alt becomes ``""``, left for CaptionRules to drop with a
reason), and ``Rejection`` rows for images that cannot be fetched at all:
``extract.data_uri`` (inline ``data:`` images) and ``extract.bad_url`` (no
usable http(s) source).

Context captured per image: page ``<title>``, the ``title`` attribute, the
enclosing ``<figure>``'s ``<figcaption>``, the nearest preceding heading, the
language (``lang`` of the nearest ancestor), declared width/height. ``<base href>``
and lazy-load ``data-src`` are honoured. The charset is detected from the HTTP
header, a BOM, a ``<meta charset>`` or by sniffing (bs4's UnicodeDammit).
"""

from __future__ import annotations

import logging
from typing import Optional
from urllib.parse import urljoin, urlsplit

import apache_beam as beam
import lxml.html
from bs4 import UnicodeDammit
from lxml import etree

from pipeline import metrics
from pipeline.records import AltPair, DropReason, Page, Rejection, make_key

log = logging.getLogger(__name__)

_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_SRC_ATTRS = ("src", "data-src", "data-lazy-src", "data-original")
_TEXT_MAX = 500
_PARSER = lxml.html.HTMLParser(encoding="utf-8")


def _clean(text: Optional[str], limit: int = _TEXT_MAX) -> str:
    return " ".join((text or "").split())[:limit]


def decode_html(html: bytes, content_type: str = "") -> str:
    """HTML bytes to text: declared charset, BOM, meta tag, then sniffing."""
    declared = []
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            declared.append(value.strip("\"' "))
    dammit = UnicodeDammit(html, known_definite_encodings=declared, is_html=True)
    if dammit.unicode_markup is None:
        return html.decode("utf-8", errors="replace")
    return dammit.unicode_markup


def _int_attr(value: Optional[str]) -> Optional[int]:
    if not value:
        return None
    digits = value.strip().lower().removesuffix("px")
    return int(digits) if digits.isdigit() else None


def _image_src(img) -> str:
    for attr in _SRC_ATTRS:
        value = (img.get(attr) or "").strip()
        if value and not (attr == "src" and value.startswith("data:") and img.get("data-src")):
            return value
    return ""


def _context(img, page_title: str, heading_of: dict) -> dict:
    figcaption = ""
    lang = ""
    for anc in img.iterancestors():
        if not figcaption and anc.tag == "figure":
            caps = anc.findall(".//figcaption")
            figcaption = _clean(caps[0].text_content()) if caps else ""
        if not lang and anc.get("lang"):
            lang = anc.get("lang").strip().lower()
    return {
        "page_title": page_title,
        "title": _clean(img.get("title")),
        "figcaption": figcaption,
        "heading": heading_of.get(img, ""),
        "lang": lang,
        "declared_width": _int_attr(img.get("width")),
        "declared_height": _int_attr(img.get("height")),
    }


def _headings_before_images(doc) -> dict:
    """Map each <img> element to the text of the nearest heading before it (document order)."""
    current, result = "", {}
    for el in doc.iter(*_HEADINGS, "img"):
        if el.tag == "img":
            result[el] = current
        else:
            current = _clean(el.text_content(), 200)
    return result


def extract_pairs(html: bytes, page_url: str, content_type: str = "") -> tuple[list[AltPair], list[Rejection]]:
    """All ``<img>`` of a page as pairs, plus rejections for unusable sources."""
    text = decode_html(html, content_type)
    try:
        # Re-encoded as UTF-8 bytes: lxml refuses str input that carries an
        # XML encoding declaration, and the charset question is settled above.
        doc = lxml.html.document_fromstring(text.encode("utf-8"), parser=_PARSER)
    except (etree.ParserError, ValueError) as exc:
        log.debug("unparseable page %s: %s", page_url, exc)
        return [], []
    base = page_url
    for href in doc.xpath("//base/@href"):
        base = urljoin(page_url, href.strip())
        break
    titles = doc.xpath("//title")
    page_title = _clean(titles[0].text_content(), 300) if titles else ""
    heading_of = _headings_before_images(doc)
    pairs, rejected = [], []
    for position, img in enumerate(doc.iter("img")):
        src = _image_src(img)
        key = make_key(page_url, position)
        caption = _clean(img.get("alt"), 2000)
        stub = AltPair(key=key, page_url=page_url, image_url=src[:300], caption=caption, position=position)
        if src.startswith("data:"):
            rejected.append(Rejection.of(stub, DropReason.EXTRACT_DATA_URI, src[:40]))
            continue
        absolute = urljoin(base, src) if src else ""
        if urlsplit(absolute).scheme not in ("http", "https"):
            rejected.append(Rejection.of(stub, DropReason.EXTRACT_BAD_URL, f"src={src[:200]!r}"))
            continue
        ctx = _context(img, page_title, heading_of)
        pairs.append(AltPair(key=key, page_url=page_url, image_url=absolute, caption=caption,
                             position=position, **ctx))
    return pairs, rejected


class _ExtractFn(beam.DoFn):
    def process(self, page: Page):
        pairs, rejected = extract_pairs(page.html, page.url, page.content_type)
        metrics.inc(metrics.Counter.PAIRS_EXTRACTED, len(pairs) + len(rejected))
        yield from pairs
        for rej in rejected:
            metrics.inc_reason(DropReason(rej.reason))
            yield beam.pvalue.TaggedOutput("rejected", rej)


class ExtractAltText(beam.PTransform):
    """Page -> (AltPair, Rejection) PCollections."""

    def expand(self, pages):
        out = pages | "Extract" >> beam.ParDo(_ExtractFn()).with_outputs("rejected", main="pairs")
        return out.pairs, out.rejected
