"""The crawl's parts for one page or URL: normaliser, links, duplicates, fetch (no shuffles here).

``FetchPages`` (seed URLs -> ``(pages, failures)``) is transforms/crawl_frontier.py, built level by
level from these parts; its docstring says the graph, the failure reasons and the keys.
Other modules use this one for ``normalize_url`` (URL dedupe), ``page_links`` /
``extract_links`` (links of WARC pages) and ``DuplicatePages``.

Links (``page_links``): ``<a href>`` and ``<link rel=canonical>``, resolved against the
first ``<base href>`` (ignored when it does not parse), from the page decoded and parsed as
extraction does (transforms/html_text.py: no depth limit). A link that does not parse (a
bad IPv6 literal), has a bad port or no host, or is longer than 2,048 characters once
normalised (transforms/url_guard.py) is skipped, never cut.

Duplicate pages (``crawl.canonical``, ``crawl.duplicate_content``): the first page in crawl
order (depth, then requested URL) wins; a later page whose ``<link rel=canonical>`` names a URL
already crawled (or claimed as canonical by an earlier page), or whose bytes equal an earlier
page's, is ``crawl.duplicate_page``. ``DuplicatePages`` decides from (URL, canonical, sha1 of
the bytes) alone, so the frontier replays it from light tuples after the crawl.

Internal errors (pipeline/faults.py): an unexpected exception while one page is fetched,
while its links and canonical URL are read, or while its duplicate check runs makes that page
a ``crawl.internal_error`` failure (the detail names the exception and where); the rest of the
crawl goes on. So does one while a seed is normalised and keyed.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Union
from urllib.parse import urlsplit

from pipeline import faults
from pipeline.records import DropReason, Page, PageFailure
from transforms import http_client
from transforms.html_text import parse_html, utf8_html
from transforms.http_client import HttpClient
from transforms.url_canonical import canonical_url as normalize_url  # the one canonical form (crawl, dedupe, blocklists)
from transforms.url_guard import MAX_URL_CHARS, join, parses, too_long, url_problem

log = logging.getLogger(__name__)

HTML_TYPES = ("text/html", "application/xhtml+xml")
_SKIP_SCHEMES = ("mailto:", "javascript:", "tel:", "data:", "ftp:")
_C0_OR_SPACE = "".join(map(chr, range(33)))

_CRAWL_REASONS = {
    http_client.HTTP_4XX: DropReason.CRAWL_HTTP_4XX,
    http_client.HTTP_5XX: DropReason.CRAWL_HTTP_5XX,
    http_client.ROBOTS: DropReason.CRAWL_ROBOTS,
    http_client.PRIVATE: DropReason.CRAWL_PRIVATE,
    http_client.TOO_LARGE: DropReason.CRAWL_TOO_LARGE,
    http_client.ROBOTS_UNAVAILABLE: DropReason.CRAWL_ROBOTS_UNAVAILABLE,
    http_client.HOST_TOO_SLOW: DropReason.CRAWL_HOST_TOO_SLOW,
    http_client.TDM_RESERVED: DropReason.CRAWL_TDM_RESERVED,
    http_client.NOAI: DropReason.CRAWL_NOAI,
}


@dataclass(frozen=True)
class PageLinks:
    """What the crawl reads from a page: its ``<a href>`` links and ``<link rel=canonical>``."""

    links: tuple = ()  # absolute, normalised, sorted
    canonical: str = ""  # absolute, normalised; "" when none (or not http(s))


def _absolute(base: str, href: str, max_chars: int = MAX_URL_CHARS) -> str:
    """The normalised absolute http(s) URL of an href, or "" (also when it does not parse, has a
    bad port or no host, or is longer than ``max_chars`` once normalised: skipped, never cut)."""
    href = href.strip(_C0_OR_SPACE)
    if not href or href.startswith("#") or href.lower().startswith(_SKIP_SCHEMES):
        return ""
    absolute = join(base, href)
    if not absolute or url_problem(absolute, None):
        return ""
    url = normalize_url(absolute)
    return "" if too_long(url, max_chars) else url


def _link_base(doc, page_url: str) -> str:
    """The page's base: its first ``<base href>`` when that parses, else the page URL ("" when
    neither does: only absolute links are found then)."""
    base = page_url if parses(page_url) else ""
    for href in doc.xpath("//base/@href"):
        joined = join(base, href.strip())
        if joined and parses(joined):
            base = joined
        break
    return base


def page_links(html: bytes, page_url: str, content_type: str = "", max_chars: int = MAX_URL_CHARS) -> PageLinks:
    """Links and canonical URL of a page (``<base href>`` honoured for both). The page is decoded
    and parsed as extraction does it (transforms/html_text.py: charset, no depth limit)."""
    doc = parse_html(utf8_html(html, content_type))
    if doc is None:
        return PageLinks()
    base = _link_base(doc, page_url)
    links = {url for href in doc.xpath("//a/@href") if (url := _absolute(base, href, max_chars))}
    canonical = ""
    for link in doc.iter("link"):
        if "canonical" in (link.get("rel") or "").lower().split():
            canonical = _absolute(base, link.get("href") or "", max_chars)
            break
    return PageLinks(tuple(sorted(links)), canonical)


def extract_links(html: bytes, page_url: str, content_type: str = "") -> list[str]:
    """Absolute, normalised http(s) links of ``<a href>`` (honours ``<base href>``)."""
    return list(page_links(html, page_url, content_type).links)


class DuplicatePages:
    """First page wins, in crawl order: later pages with a claimed canonical URL or the same bytes
    are duplicates. Not thread-safe: pages are checked one by one, in crawl order."""

    def __init__(self, canonical: bool, content: bool):  # crawl.canonical, crawl.duplicate_content
        self.use_canonical, self.use_content = canonical, content
        self.claimed: dict[str, str] = {}  # URL (own or canonical) -> the page that claimed it
        self.digests: dict[str, str] = {}  # sha1 of the bytes -> the page

    def check(self, page: Page, canonical: str) -> str:
        """"" for a new page (and remember it), else why it is a duplicate."""
        return self.check_url(page.url, canonical, page_digest(page.html) if self.use_content else "")

    def check_url(self, url: str, canonical: str, digest: str) -> str:
        """``check`` from the page's URL, canonical URL and ``page_digest`` (no bytes needed)."""
        key = canonical if (self.use_canonical and canonical) else url
        for claim in (key, url):
            if claim in self.claimed and self.claimed[claim] != url:
                what = f"canonical {key}" if claim == key and key != url else claim  # else: a redirect target
                return f"{what} already crawled as {self.claimed[claim]}"[:300]
        digest = digest if self.use_content else ""
        if digest and digest in self.digests:
            return f"same bytes as {self.digests[digest]}"[:300]
        self.claimed.setdefault(key, url)
        self.claimed.setdefault(url, url)
        if digest:
            self.digests[digest] = url
        return ""


def page_digest(html: bytes) -> str:
    """What duplicate-content detection compares: the sha1 of the page's bytes."""
    return hashlib.sha1(html).hexdigest()


def _fetch_page(client: HttpClient, url: str, depth: int, max_bytes: int) -> Union[Page, PageFailure]:
    # X-Robots-Tag noai on the HTML response: the page's alt text is the site's content too. Decided from
    # the headers, like a TDMRep reservation: the body is not read, so its links are not followed either.
    result = client.get(url, check_noai=True)
    if not result.ok:
        reason = _CRAWL_REASONS.get(result.failure, DropReason.CRAWL_ERROR)
        return PageFailure(url, reason, f"{result.failure}: {result.detail}")
    if result.mime and result.mime not in HTML_TYPES:
        return PageFailure(url, DropReason.CRAWL_NOT_HTML, result.mime)
    if len(result.data) > max_bytes:
        return PageFailure(url, DropReason.CRAWL_TOO_LARGE, f"{len(result.data)} bytes")
    return Page(url=normalize_url(result.final_url or url), html=result.data, depth=depth,
                content_type=result.content_type, status=result.status)


def _page_internal_error(url: str, exc: Exception) -> PageFailure:
    return PageFailure(url, DropReason.CRAWL_INTERNAL, faults.internal_error(DropReason.CRAWL_INTERNAL, exc, url))


def fetch_page_isolated(client: HttpClient, url: str, depth: int, max_bytes: int) -> Union[Page, PageFailure]:
    """``_fetch_page``, with an unexpected exception as this page's ``crawl.internal_error``."""
    try:
        return _fetch_page(client, url, depth, max_bytes)
    except Exception as exc:  # a bug one page trips costs that page, not the host's crawl
        return _page_internal_error(url, exc)


@dataclass(frozen=True)
class PageVisit:
    """What the frontier keeps of a fetched page: the links to consider following, its canonical
    URL and the digest of its bytes (the duplicate check's inputs)."""

    links: tuple = ()
    canonical: str = ""
    digest: str = ""


def _visit(page: Page, host: str, same_host: bool) -> PageVisit:
    """Links (with ``same_host``: only those to ``host``, the crawl group's), canonical and digest."""
    found = page_links(page.html, page.url, page.content_type)
    links = tuple(link for link in found.links if not same_host or urlsplit(link).netloc == host)
    return PageVisit(links, found.canonical, page_digest(page.html))


def visit_isolated(page: Page, host: str, same_host: bool) -> Union[PageVisit, PageFailure]:
    """``_visit``, with an unexpected exception as this page's ``crawl.internal_error`` (no links)."""
    try:
        return _visit(page, host, same_host)
    except Exception as exc:  # link extraction failing on one page must not lose the rest of the crawl
        return _page_internal_error(page.url, exc)


def duplicate_isolated(duplicates: DuplicatePages, url: str, visit: PageVisit) -> Union[str, PageFailure]:
    """``duplicates.check_url`` of a page ("" or why it is a duplicate), with an unexpected exception
    as this page's ``crawl.internal_error`` (the check goes on with the next page)."""
    try:
        return duplicates.check_url(url, visit.canonical, visit.digest)
    except Exception as exc:  # a bug one page trips costs that page, not its host's pages
        return _page_internal_error(url, exc)


def seed_key_isolated(url: str):
    """``(host, normalised URL)`` of a seed; an unexpected exception gives its ``PageFailure`` instead."""
    try:
        normal = normalize_url(url)
        return urlsplit(normal).netloc, normal
    except Exception as exc:  # one seed that trips a bug costs that seed, not the run
        return _page_internal_error(str(url)[:300], exc)
