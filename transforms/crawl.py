"""FetchPages: same-site crawl from seed URLs.

Input: a PCollection of seed URLs (str). Output: ``(pages, failures)`` —
``Page`` records with the HTML bytes, and ``PageFailure`` records (reasons
``crawl.http_4xx``, ``crawl.http_5xx``, ``crawl.not_html``, ``crawl.robots_disallowed``,
``crawl.private_address``, ``crawl.too_large``, ``crawl.error``). Pages are not
pairs, so failures go to the page funnel in stats.json, not the rejections table.

Seeds are grouped by host and each host is crawled breadth-first by one DoFn
call: per-host politeness stays in one place, and the visit order (and so the
page set under ``max_pages``) is deterministic: each level is fetched in
parallel but processed in sorted URL order.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Iterator, Union
from urllib.parse import urljoin, urlsplit, urlunsplit

import apache_beam as beam
import lxml.html
from lxml import etree

from pipeline import metrics
from pipeline.records import DropReason, Page, PageFailure
from transforms import http_client
from transforms.http_client import HttpClient

log = logging.getLogger(__name__)

HTML_TYPES = ("text/html", "application/xhtml+xml")
_SKIP_SCHEMES = ("mailto:", "javascript:", "tel:", "data:", "ftp:")

_CRAWL_REASONS = {
    http_client.HTTP_4XX: DropReason.CRAWL_HTTP_4XX,
    http_client.HTTP_5XX: DropReason.CRAWL_HTTP_5XX,
    http_client.ROBOTS: DropReason.CRAWL_ROBOTS,
    http_client.PRIVATE: DropReason.CRAWL_PRIVATE,
    http_client.TOO_LARGE: DropReason.CRAWL_TOO_LARGE,
}


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4: resolve ``.`` and ``..`` but keep empty segments (``//``),
    which servers may treat as distinct paths."""
    out: list[str] = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == ".":
            if last:
                out.append("")
        elif seg == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(seg)
    result = "/".join(out)
    return result if result.startswith("/") else "/" + result


def normalize_url(url: str) -> str:
    """Canonical form for crawl and URL dedupe: lower-case scheme/host, no default
    port, no fragment, dot-segments resolved, empty path as ``/``. A URL whose
    port does not parse is kept as written (minus the fragment): the fetch stage
    rejects it as ``fetch.bad_url`` rather than the crawl crashing on it."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        return urlunsplit((scheme, parts.netloc, parts.path or "/", parts.query, ""))
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        netloc = f"{host}:{port}"
    if parts.username or parts.password:
        netloc = parts.netloc.rsplit("@", 1)[0] + "@" + netloc
    return urlunsplit((scheme, netloc, _remove_dot_segments(parts.path or "/"), parts.query, ""))


def _has_valid_port(url: str) -> bool:
    try:
        urlsplit(url).port
    except ValueError:
        return False
    return True


def extract_links(html: bytes, page_url: str) -> list[str]:
    """Absolute, normalised http(s) links of ``<a href>`` (honours ``<base href>``)."""
    try:
        doc = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return []
    base = page_url
    for href in doc.xpath("//base/@href"):
        base = urljoin(page_url, href.strip())
        break
    links = set()
    for href in doc.xpath("//a/@href"):
        href = href.strip()
        if not href or href.startswith("#") or href.lower().startswith(_SKIP_SCHEMES):
            continue
        absolute = urljoin(base, href)
        if urlsplit(absolute).scheme in ("http", "https") and _has_valid_port(absolute):
            links.add(normalize_url(absolute))
    return sorted(links)


def _fetch_page(client: HttpClient, url: str, depth: int, max_bytes: int) -> Union[Page, PageFailure]:
    result = client.get(url)
    if not result.ok:
        reason = _CRAWL_REASONS.get(result.failure, DropReason.CRAWL_ERROR)
        return PageFailure(url, reason, f"{result.failure}: {result.detail}")
    if result.mime and result.mime not in HTML_TYPES:
        return PageFailure(url, DropReason.CRAWL_NOT_HTML, result.mime)
    if len(result.data) > max_bytes:
        return PageFailure(url, DropReason.CRAWL_TOO_LARGE, f"{len(result.data)} bytes")
    return Page(url=normalize_url(result.final_url or url), html=result.data, depth=depth,
                content_type=result.content_type, status=result.status)


def crawl_site(client: HttpClient, seeds: Iterable[str], max_depth: int, max_pages: int,
               same_host: bool = True, concurrency: int = 8,
               max_page_bytes: int = 5_000_000) -> Iterator[Union[Page, PageFailure]]:
    """Breadth-first crawl of one host's seeds; yields pages and failures."""
    frontier = sorted({normalize_url(s) for s in seeds})
    hosts = {urlsplit(s).netloc for s in frontier}
    seen = set(frontier)
    fetched = 0
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for depth in range(max_depth + 1):
            frontier = frontier[: max(0, max_pages - fetched)]
            if not frontier:
                return
            fetched += len(frontier)
            results = pool.map(lambda u: _fetch_page(client, u, depth, max_page_bytes), frontier)
            next_level = set()
            for result in results:
                yield result
                if isinstance(result, Page) and depth < max_depth:
                    for link in extract_links(result.html, result.url):
                        if link in seen or (same_host and urlsplit(link).netloc not in hosts):
                            continue
                        seen.add(link)
                        next_level.add(link)
            frontier = sorted(next_level)


class _CrawlHostFn(beam.DoFn):
    def __init__(self, crawl_cfg, client_settings):
        self.crawl_cfg = crawl_cfg
        self.client_settings = client_settings
        self.client = None

    def setup(self):
        self.client = HttpClient(self.client_settings)

    def teardown(self):
        if self.client is not None:
            self.client.close()

    def process(self, host_and_seeds):
        _host, seeds = host_and_seeds
        cfg = self.crawl_cfg
        for result in crawl_site(self.client, seeds, cfg.max_depth, cfg.max_pages, cfg.same_host,
                                 cfg.concurrency, cfg.max_page_bytes):
            if isinstance(result, Page):
                metrics.inc(metrics.Counter.PAGES_FETCHED)
                yield result
            else:
                metrics.inc_reason(result.reason)
                yield beam.pvalue.TaggedOutput("failures", result)


class FetchPages(beam.PTransform):
    """Seed URLs -> (Page, PageFailure) PCollections."""

    def __init__(self, crawl_cfg, client_settings):
        super().__init__()
        self.crawl_cfg = crawl_cfg
        self.client_settings = client_settings

    def expand(self, seeds):
        results = (
            seeds
            | "NormalizeSeed" >> beam.Map(normalize_url)
            | "KeyByHost" >> beam.Map(lambda u: (urlsplit(u).netloc, u))
            | "GroupByHost" >> beam.GroupByKey()
            | "CrawlHost" >> beam.ParDo(_CrawlHostFn(self.crawl_cfg, self.client_settings))
            .with_outputs("failures", main="pages")
        )
        return results.pages, results.failures
