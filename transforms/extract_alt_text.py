"""ExtractAltText: ``<img>`` alt-text pairs with their context, from HTML pages.

Input: ``Page`` records. Output: ``(pairs, rejected)`` — one ``AltPair`` per
``<img>`` (missing alt becomes ``""``, left for CaptionRules to drop with a
reason), and ``Rejection`` rows for images not worth a request:
``extract.data_uri`` (inline ``data:`` images), ``extract.bad_url`` (no usable
http(s) source: none, another scheme, a URL that does not parse — a bad IPv6
literal, a bad port, no host — or one longer than ``extract.max_url_chars``,
2,048: refused with its length in the detail, never cut) and ``extract.tracker`` (declared 1x1 or smaller, or a known
tracking-pixel URL, ``extract.tracker_patterns``). A page whose extraction
raises an unexpected exception gives one ``extract.internal_error`` rejection
keyed by the page (pipeline/faults.py: the detail names the exception and where).

What the page declares about its images: a ``<meta name="robots">`` (or one named
with ``fetch.user_agent``'s product token, ``wit-curator``; not another bot's) listing
``noai`` or ``noimageai`` makes every pair of the page an ``extract.page_noai``
rejection, ``<meta name="tdm-reservation" content="1">`` an ``extract.tdm_reserved``
one (when ``fetch.respect_tdmrep``); images that were no pair keep their own reason
(transforms/page_opt_out.py). Each pair's ``license`` is the licence the page declares
for it (JSON-LD ImageObject, then its ``<figure>``'s, then the page's: transforms/license.py),
"" when the page says nothing. Both read the tree only when the page's bytes mention them.

Which URL: lazy-load attributes first (``data-lazy-src``, ``data-src``,
``data-original``: the script copies them into ``src``, whose own value is then
a placeholder), then ``src``. When the ``<img>`` (``data-lazy-srcset``,
``data-srcset``, ``srcset``) or its ``<picture>``'s ``<source>`` elements offer
candidates, the smallest at least ``resize.image_size`` wide is chosen, else the
widest (transforms/image_source.py, transforms/srcset.py); ``<source>`` of a type we do not decode (AVIF,
SVG, JPEG XL) is skipped. The choice is recorded in ``extra`` as
``("src_from", "srcset 800w")`` when it is not the plain ``src``.

Lazy-load plugins repeat each image in ``<noscript>`` for browsers without
JavaScript; that copy is not a second pair (an ``<img>`` in ``<noscript>``
right after an image, or with a URL another ``<img>`` already names, is
skipped, and lends its alt/title to its twin when that has none).

Context captured per image: page ``<title>``, the ``title`` attribute, the
enclosing ``<figure>``'s ``<figcaption>``, the nearest preceding heading, the
language (``lang`` of the nearest ancestor), declared width/height (ASCII digits
only: ``width="３００"`` or ``"²"`` is no declared width). ``<base href>`` is honoured;
one that does not parse is ignored (the page URL stays the base). The charset comes
from the HTTP header, a BOM, a ``<meta charset>`` or sniffing (bs4's UnicodeDammit;
transforms/html_text.py), and the page is parsed completely however deep its
unclosed tags go (html_text: every ``<img>`` after thousands of them is found).

Speed (bench/extract.py: at least 0.4x a bare lxml parse): one pass over the tree
collects images, headings, base and title; pages without <figure> or a nested
``lang`` skip the per-image ancestor walk; heading text is read only when an image
follows it. The page opt-out and licence step costs about 5% of it on the bench corpus (bytes
scans of the page; the tree is read on the few pages that mention them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Optional
from urllib.parse import urljoin

import apache_beam as beam
from lxml import etree

from pipeline import faults, metrics
from pipeline.records import AltPair, DropReason, Page, Rejection, make_key
from transforms.html_text import clean_text, decode_html, int_attr, parse_html, utf8_html
from transforms.image_source import image_source, is_tracker, noscript_twins, resolve
from transforms.url_guard import join, parses, url_problem
from transforms.license import absolute_url, may_declare_license, page_licenses
from transforms.page_opt_out import may_opt_out, page_opt_out

log = logging.getLogger(__name__)

_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_TEXT_MAX = 500

__all__ = ["ExtractAltText", "ExtractSpec", "decode_html", "extract_pairs"]


@dataclass(frozen=True)
class ExtractSpec:
    """What extraction needs from the config (plain values: pickled into the DoFn); pipeline/specs.py
    makes it (``extract_spec``)."""

    target_size: int  # resize.image_size: the srcset candidate is chosen for it
    tracker_max_side: int  # extract.tracker_max_side
    tracker_patterns: tuple  # extract.tracker_patterns, lower-cased
    bot_token: str  # fetch.user_agent's product token: <meta name="wit-curator" content="noai">
    respect_tdmrep: bool  # fetch.respect_tdmrep: <meta name="tdm-reservation" content="1">
    max_url_chars: int  # extract.max_url_chars: a longer image URL is extract.bad_url


def _ancestor_context(img, memo: dict) -> tuple[str, str]:
    """(figcaption of the nearest <figure>, nearest ``lang``) of an element, memoised per
    ancestor: images share most of their ancestors, so each is looked at once per page."""
    chain, info = [], ("", "")
    for anc in img.iterancestors():
        if anc in memo:
            info = memo[anc]
            break
        chain.append(anc)
    for anc in reversed(chain):  # outermost first: inner elements override
        figcaption, lang = info
        if anc.tag == "figure":
            caps = anc.findall(".//figcaption")
            figcaption = clean_text(caps[0].text_content(), _TEXT_MAX) if caps else ""
        own_lang = anc.get("lang")
        info = (figcaption, own_lang.strip().lower() if own_lang else lang)
        memo[anc] = info
    return info


_LANGS = etree.XPath("//*[@lang]")


def _uniform_context(doc, has_figure: bool, lang_mentions: int) -> Optional[tuple[str, str]]:
    """(figcaption, lang) shared by every image when the page has no <figure> and no ``lang``
    below the root (most pages): no per-image ancestor walk is needed then. ``lang_mentions``
    counts "lang" in the page's bytes, any case: 0 means no lang attribute at all, without
    the XPath scan (a fifth of a parse)."""
    if has_figure:
        return None
    root = doc.getroottree().getroot()
    if lang_mentions == 0:
        return "", ""
    if lang_mentions == 1 and root.get("lang"):
        return "", root.get("lang").strip().lower()
    langs = _LANGS(doc)
    if not langs:
        return "", ""
    if len(langs) == 1 and langs[0] is root:
        return "", langs[0].get("lang").strip().lower()
    return None


def _context(img, page) -> dict:
    figcaption, lang = page.uniform or _ancestor_context(img, page.memo)
    attrib = img.attrib
    return {
        "page_title": page.title,
        "title": clean_text(attrib.get("title"), _TEXT_MAX),
        "figcaption": figcaption,
        "heading": page.heading_text(img),
        "lang": lang,
        "declared_width": int_attr(attrib.get("width")),
        "declared_height": int_attr(attrib.get("height")),
    }


def _scan(doc) -> tuple[list, dict, dict]:
    """One pass over the page: its <img> elements, the nearest heading before each (document
    order), and the first of each of base / title / figure / picture / noscript (base and title
    are the page's; the others each decide a slower path)."""
    imgs, heading_of, current, first = [], {}, None, {}
    for el in doc.iter("img", *_HEADINGS, "figure", "picture", "noscript", "base", "title"):
        tag = el.tag
        if tag == "img":
            imgs.append(el)
            heading_of[el] = current  # the element: its text is read only if an image keeps it
        elif tag in _HEADINGS:
            current = el
        elif tag not in first and (tag != "base" or el.get("href")):
            first[tag] = el
    return imgs, heading_of, first


def _usable_base(url: str) -> bool:
    """A base other URLs may be joined to: it parses (no bad IPv6 literal or port) and, when it is
    http(s), names a host. Its length does not matter: its directory may still be short."""
    if not parses(url):
        return False
    return not url.lower().startswith(("http:", "https:")) or url_problem(url, None) == ""


def _page_base_and_title(first: dict, page_url: str) -> tuple[str, str]:
    """(the base URL, the <title>). A ``<base href>`` that does not parse is ignored (the page URL
    stays the base); a page URL that does not either gives "" (only absolute sources resolve)."""
    base = page_url if _usable_base(page_url) else ""
    if "base" in first:
        joined = join(base, first["base"].get("href").strip())
        if joined and _usable_base(joined):
            base = joined
    title = clean_text(first["title"].text_content(), 300) if "title" in first else ""
    return base, title


@dataclass
class _PageState:
    """What every <img> of one page shares."""

    url: str
    base: str
    base_dir: str
    title: str
    heading_of: dict  # <img> -> the heading element before it (or None)
    has_picture: bool
    uniform: Optional[tuple]  # (figcaption, lang) of every image, when the page makes that knowable
    memo: dict  # ancestor -> (figcaption, lang), for pages where it is not
    heading_texts: dict = field(default_factory=dict)

    def heading_text(self, img) -> str:
        heading = self.heading_of.get(img)
        if heading is None:
            return ""
        if heading not in self.heading_texts:
            self.heading_texts[heading] = clean_text(heading.text_content(), 200)
        return self.heading_texts[heading]


def _bad_url_detail(page: _PageState, src: str, max_chars: int) -> str:
    """Why an image source gave no URL (rejections only: joins again to find out)."""
    if not src:
        return "no src"
    problem = url_problem(join(page.base, src) or src, max_chars)
    return f"{problem or 'no http(s) base to resolve against'}: src={src[:200]!r}"


def _pair_or_rejection(img, position: int, page: _PageState, spec: ExtractSpec, twin) -> AltPair | Rejection:
    source = image_source(img, spec.target_size, page.has_picture)
    caption = clean_text(img.get("alt"), 2000)
    if twin is not None and not caption:
        caption = clean_text(twin.get("alt"), 2000)
    key = make_key(page.url, position)
    data_uri = source.url.startswith("data:")
    absolute = "" if data_uri else resolve(page.base, page.base_dir, source.url, spec.max_url_chars)
    if not absolute:
        reason, detail = ((DropReason.EXTRACT_DATA_URI, source.url[:40]) if data_uri
                          else (DropReason.EXTRACT_BAD_URL, _bad_url_detail(page, source.url, spec.max_url_chars)))
        return Rejection.of(AltPair(key=key, page_url=page.url, image_url=source.url[:300], caption=caption,
                                    position=position), reason, detail)
    context = _context(img, page)
    if twin is not None and not context["title"]:
        context["title"] = clean_text(twin.get("title"), _TEXT_MAX)
    tracker = is_tracker(absolute, context["declared_width"], context["declared_height"],
                         spec.tracker_max_side, spec.tracker_patterns)
    if tracker:
        return Rejection.of(AltPair(key=key, page_url=page.url, image_url=absolute[:300], caption=caption,
                                    position=position), DropReason.EXTRACT_TRACKER, tracker)
    extra = (("src_from", source.origin),) if source.origin != "src" else ()
    return AltPair(key=key, page_url=page.url, image_url=absolute, caption=caption, position=position,
                   extra=extra, **context)


def extract_pairs(html: bytes, page_url: str, content_type: str,
                  spec: ExtractSpec) -> tuple[list[AltPair], list[Rejection]]:
    """All ``<img>`` of a page as pairs, plus rejections for unusable sources."""
    data = utf8_html(html, content_type)
    doc = parse_html(data)
    if doc is None:
        log.debug("unparseable page %s", page_url)
        return [], []
    imgs, heading_of, first = _scan(doc)
    if not imgs:
        return [], []
    base, page_title = _page_base_and_title(first, page_url)
    base_dir = urljoin(base, ".")
    lowered = data.lower()  # for the cheap pre-checks: lang, opt-out metas, licences
    uniform = _uniform_context(doc, "figure" in first, lowered.count(b"lang"))
    page = _PageState(page_url, base, base_dir if base_dir.startswith(("http://", "https://")) else "",
                      page_title, heading_of, "picture" in first, uniform, {})
    twins, lender = noscript_twins(imgs, base, spec.target_size) if "noscript" in first else (set(), {})
    pairs, rejected = [], []
    for position, img in enumerate(imgs):
        if img in twins:
            continue
        out = _pair_or_rejection(img, position, page, spec, lender.get(img))
        (rejected if isinstance(out, Rejection) else pairs).append(out)
    return _page_says(doc, lowered, imgs, page, spec, pairs, rejected)


def _urls_of(pair: AltPair, imgs: list, base: str) -> tuple:
    """The URLs a JSON-LD ImageObject may name a pair's image by: the chosen source, the plain src."""
    src = (imgs[pair.position].get("src") or "").strip()
    return (pair.image_url, absolute_url(base, src)) if src and not src.startswith("data:") else (pair.image_url,)


def _page_says(doc, lowered: bytes, imgs: list, page: _PageState, spec: ExtractSpec, pairs: list,
               rejected: list) -> tuple[list, list]:
    """What the page declares about its pairs: an opt-out refuses every one (images that were
    no pair keep their reason); a licence is recorded on each (transforms/license.py). Both look
    at the tree only when the page's bytes mention them."""
    if not pairs:
        return pairs, rejected
    if may_opt_out(lowered, spec.respect_tdmrep):
        verdict = page_opt_out(doc, spec.bot_token, spec.respect_tdmrep)
        if verdict is not None:
            return [], rejected + [Rejection.of(pair, *verdict) for pair in pairs]
    if may_declare_license(lowered):
        found = page_licenses(doc, page.base)
        if not found.empty:
            pairs = [replace(pair, license=found.for_image(imgs[pair.position], _urls_of(pair, imgs, page.base)))
                     for pair in pairs]
    return pairs, rejected


def page_internal_error(page: Page, exc: Exception) -> Rejection:
    """The one rejection of a page whose extraction raised: ``extract.internal_error``, keyed by
    the page (position -1: no ``<img>`` has it), counted as one extracted pair so that
    ``pairs_extracted == kept + rejected`` still holds."""
    reason = DropReason.EXTRACT_INTERNAL
    key = make_key(page.url, -1)
    return Rejection(key=key, stage=reason.stage, reason=reason.value,
                     detail=faults.internal_error(reason, exc, page.url), page_url=page.url)


def extract_isolated(page: Page, spec: ExtractSpec) -> tuple[list, list]:
    """``extract_pairs`` of one page, with an unexpected exception as that page's one rejection."""
    try:
        return extract_pairs(page.html, page.url, page.content_type, spec)
    except Exception as exc:  # a bug one page trips costs that page, not the run
        return [], [page_internal_error(page, exc)]


class _ExtractFn(beam.DoFn):
    def __init__(self, spec: ExtractSpec):
        self.spec = spec

    def process(self, page: Page):
        pairs, rejected = extract_isolated(page, self.spec)
        metrics.inc(metrics.Counter.PAIRS_EXTRACTED, len(pairs) + len(rejected))
        yield from pairs
        for rej in rejected:
            metrics.inc_reason(DropReason(rej.reason))
            yield beam.pvalue.TaggedOutput("rejected", rej)


class ExtractAltText(beam.PTransform):
    """Page -> (AltPair, Rejection) PCollections."""

    def __init__(self, spec: ExtractSpec):
        super().__init__()
        self.spec = spec

    def expand(self, pages):
        out = pages | "Extract" >> beam.ParDo(_ExtractFn(self.spec)).with_outputs("rejected", main="pairs")
        return out.pairs, out.rejected

