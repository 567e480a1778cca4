"""FetchPages' graph: the crawl as a frontier, one level per link hop, ``crawl.max_depth`` unrolled.

Input: seed URLs (str). Output: ``(pages, failures)`` — ``Page`` records with the HTML bytes, and
``PageFailure`` records: ``crawl.http_4xx``, ``crawl.http_5xx``, ``crawl.not_html``,
``crawl.robots_disallowed``, ``crawl.private_address``, ``crawl.too_large``, ``crawl.error``,
``crawl.duplicate_page``, ``crawl.robots_unavailable`` (robots.txt 5xx or unreachable: RFC 9309
complete disallow), ``crawl.host_too_slow`` (Crawl-delay / Retry-After over
``fetch.max_host_delay_s``), ``crawl.tdm_reserved`` and ``crawl.noai`` (TDMRep reservation or
X-Robots-Tag noai for us on the page's response, decided from its headers), ``crawl.internal_error``
(transforms/crawl.py). Pages are not pairs: failures go to the page funnel in stats.json.

The crawl group of a URL is the netloc of the seed it was found from; ``crawl.max_pages`` counts
the URLs a group requests (failures too). With ``crawl.same_host`` a group follows only links to
its own netloc; without it an off-host link is the finding page's group's, and counts there.

Shape, per level ``d`` (requests are ``(group, url)``):
1. fetch: keyed by the URL's netloc over ``KeyByHostShard`` keys (transforms/host_keys.py: a host
   with more than ``fetch.urls_per_key`` requests in the level is spread over up to
   ``crawl.concurrency`` keys), grouped, fetched by a ``HostKeyedFetchFn``
   (transforms/host_fetch.py): ``fetch.concurrency`` pages at once per worker, ``crawl.concurrency``
   per host over all its keys, request spacing time-sliced between them;
2. visit, per page, no grouping: links (kept by ``same_host``), canonical URL, sha1 of the bytes;
3. next level: the links as ``(group, url)`` candidates minus every URL the group requested at
   levels ``<= d``, a join done as ``CombinePerKey(max)`` on ``(group, url)`` over marks
   (candidate 1, requested 2: combined on each worker before the shuffle, so a URL linked from
   every page is one partial per bundle); then per group one ``CombinePerKey`` over the unseen
   URLs and a 1 per requested URL (``_WithinBudget``, also combined before the shuffle: a
   partial is a count and at most ``2 * max_pages`` URLs) keeps the smallest that fit the
   remaining budget ``max_pages - requested``. Level 0 is the seeds, distinct, cut to
   ``max_pages`` the same way.
   This is the order the per-host crawl had: a level in sorted URL order, cut at the budget.

Duplicates after the last level: a GroupByKey per group of light tuples (depth, requested URL,
page URL, canonical, digest) replays ``DuplicatePages`` in (depth, requested URL) order — what
the per-host crawl did as it went — and the decisions join back to the pages on
``(group, requested URL)``, so the HTML crosses one shuffle. A duplicate's links were followed
(a wrong canonical, pagination naming page 1, must not hide the pages only it links to).

Largest key at 100M pairs (``max_pages`` 10,000 by default):
- fetch GroupByKey: a host's requests of one level over ``count`` keys, at most
  ``max_pages / count`` per group whose pages are there (10,000 for a whole single-key host); with
  ``same_host`` false a popular off-host target can gather requests from many groups, spread
  over up to ``crawl.concurrency`` keys once it has more than ``urls_per_key``;
- seen join ``CombinePerKey(max)`` on ``(group, url)``: one partial per worker bundle;
- budget ``CombinePerKey`` per group: a count and at most ``2 * max_pages`` URLs per partial;
- duplicate ``GroupByKey`` per group: at most ``max_pages`` light tuples (URLs up to 2,048 chars);
- decision ``CoGroupByKey`` on ``(group, url)``: one page and one decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import apache_beam as beam

from pipeline import metrics
from pipeline.records import DropReason, Page, PageFailure
from transforms import crawl
from transforms.host_fetch import HostKeyedFetchFn, client_for
from transforms.host_keys import KeyByHostShard
from transforms.host_share import HostShare

_CANDIDATE, _REQUESTED = 1, 2  # seen-join marks: max() is 1 only for a URL never requested


@dataclass(frozen=True)
class CrawlSpec:
    """What the crawl needs (pipeline/specs.py makes it from ``crawl`` and two ``fetch`` knobs)."""

    max_depth: int  # link hops from the seeds
    max_pages: int  # URLs one crawl group requests (failures too)
    same_host: bool  # follow only links to the group's own netloc
    concurrency: int  # pages at once per host, over all its keys
    max_page_bytes: int  # a larger page is crawl.too_large
    canonical: bool  # a page whose rel=canonical URL was crawled already is crawl.duplicate_page
    duplicate_content: bool  # a page with the same bytes as one crawled already, too
    worker_concurrency: int  # fetch.concurrency: pages at once per worker
    urls_per_key: int  # fetch.urls_per_key: a host with more requests in a level is spread over keys
    max_keys: int  # fetch.max_keys_per_host, resolved: at most this many keys per host


def _failure(failure: PageFailure):
    metrics.inc_reason(failure.reason)
    return beam.pvalue.TaggedOutput("failures", failure)


def _keyed_seed(url: str):
    out = crawl.seed_key_isolated(url)
    yield _failure(out) if isinstance(out, PageFailure) else out


def _request_host(request) -> str:
    """The fetch key's host of a ``(group, url)`` request: the URL's netloc (never raises)."""
    url = request[1]
    try:
        return urlsplit(url).netloc
    except ValueError:  # not from our normaliser: fetched (and refused) under its raw authority
        return url.partition("://")[2].partition("/")[0]


class _FetchPagesFn(HostKeyedFetchFn):
    """HostKeyedFetchFn over ``(group, url)`` requests of one level -> ``(group, url, Page)`` or failures."""

    def __init__(self, settings, concurrency: int, per_host: int, depth: int, max_bytes: int):
        super().__init__(settings, concurrency, per_host)
        self.depth, self.max_bytes = depth, max_bytes

    def work(self, request, share: HostShare):
        # fetch_page_isolated is the page's isolation, and the only layer: with a ``failed``
        # stand-in here too, its guard (tests/mutation/guards_isolation.py) could be off unnoticed
        group, url = request
        return group, url, crawl.fetch_page_isolated(client_for(self.client, share), url, self.depth, self.max_bytes)

    def route(self, result):
        return result if isinstance(result[2], Page) else _failure(result[2])


def _visit(fetched, same_host: bool, depth: int, follow: bool):
    """A fetched page's links (next level's candidates), its duplicate-check tuple and the page."""
    group, url, page = fetched
    visit = crawl.visit_isolated(page, group, same_host)
    if isinstance(visit, PageFailure):
        yield _failure(visit)
        return
    if follow:
        for link in visit.links:
            yield beam.pvalue.TaggedOutput("links", (group, link))
    yield beam.pvalue.TaggedOutput("checks", (group, (depth, url, page.url, visit.canonical, visit.digest)))
    yield (group, url), page


class _CrawlLevel(beam.PTransform):
    """``(group, url)`` requests of depth ``d`` -> pages keyed ``(group, url)``, links, checks, failures."""

    def __init__(self, depth: int, spec: CrawlSpec, settings):
        super().__init__()
        self.depth, self.spec, self.settings = depth, spec, settings

    def expand(self, requests):
        cfg = self.spec
        fetched = (
            requests
            | "KeyByHost" >> KeyByHostShard(_request_host, lambda request: request[1],
                                            cfg.urls_per_key, min(cfg.concurrency, cfg.max_keys))
            | "GroupByHost" >> beam.GroupByKey()
            | "Fetch" >> beam.ParDo(_FetchPagesFn(self.settings, cfg.worker_concurrency, cfg.concurrency,
                                                  self.depth, cfg.max_page_bytes)).with_outputs("failures", main="pages")
        )
        visited = fetched.pages | "Visit" >> beam.FlatMap(
            _visit, cfg.same_host, self.depth, self.depth < cfg.max_depth).with_outputs(
            "links", "checks", "failures", main="pages")
        failures = (fetched.failures, visited.failures) | "Failures" >> beam.Flatten()
        return visited.pages, visited.links, visited.checks, failures


class _WithinBudget(beam.CombineFn):
    """Per group: the smallest unseen URLs (``str`` values) that fit the budget ``max_pages`` minus
    the group's requested count (``int`` values). The accumulator is the count and at most
    ``2 * max_pages`` URLs, so combining on each worker before the shuffle bounds every partial."""

    def __init__(self, max_pages: int):
        self.max_pages = max(1, max_pages)

    def create_accumulator(self):
        return 0, []

    def _trim(self, requested: int, urls: list, force: bool = False):
        if force or len(urls) > 2 * self.max_pages:
            urls = sorted(urls)[:self.max_pages]
        return requested, urls

    def add_input(self, accumulator, value):
        requested, urls = accumulator
        if isinstance(value, int):
            return requested + value, urls
        urls.append(value)
        return self._trim(requested, urls)

    def merge_accumulators(self, accumulators):
        requested, urls = 0, []
        for count, more in accumulators:
            requested += count
            urls.extend(more)
            requested, urls = self._trim(requested, urls)
        return requested, urls

    def compact(self, accumulator):
        return self._trim(*accumulator, force=True)

    def extract_output(self, accumulator):
        requested, urls = accumulator
        return sorted(urls)[:max(0, self.max_pages - requested)]


class _NextLevel(beam.PTransform):
    """``{"candidates": (group, url), "requested": (group, url) or absent}`` -> the next requests."""

    def __init__(self, max_pages: int):
        super().__init__()
        self.max_pages = max_pages

    def expand(self, inputs):
        requested = inputs.get("requested")
        marks = [inputs["candidates"] | "MarkCandidate" >> beam.Map(lambda r: (r, _CANDIDATE))]
        budget = []
        if requested is not None:
            marks.append(requested | "MarkRequested" >> beam.Map(lambda r: (r, _REQUESTED)))
            budget.append(requested | "CountRequested" >> beam.Map(lambda r: (r[0], 1)))
        unseen = (
            marks
            | "Marks" >> beam.Flatten()
            | "JoinSeen" >> beam.CombinePerKey(max)
            | "Unseen" >> beam.FlatMap(lambda kv: (kv[0],) if kv[1] == _CANDIDATE else ())
        )
        return (
            (unseen, *budget)
            | "UnseenAndRequested" >> beam.Flatten()
            | "WithinBudget" >> beam.CombinePerKey(_WithinBudget(self.max_pages))
            | "Requests" >> beam.FlatMap(lambda kv: ((kv[0], url) for url in kv[1]))
        )


def _decide(group_and_checks, canonical: bool, content: bool):
    """Replay ``DuplicatePages`` over a group's pages in (depth, requested URL) order."""
    group, checks = group_and_checks
    duplicates = crawl.DuplicatePages(canonical, content)
    for _depth, url, page_url, canonical_url, digest in sorted(checks):
        yield (group, url), crawl.duplicate_isolated(duplicates, page_url, crawl.PageVisit((), canonical_url, digest))


def _outcome(joined):
    """The page, or its duplicate / internal-error failure, from its duplicate decision."""
    _key, parts = joined
    for page in parts["page"]:
        for decision in parts["decision"]:
            if isinstance(decision, PageFailure):
                yield _failure(decision)
            elif decision:
                yield _failure(PageFailure(page.url, DropReason.CRAWL_DUPLICATE_PAGE, decision))
            else:
                metrics.inc(metrics.Counter.PAGES_FETCHED)
                yield page


class FetchPages(beam.PTransform):
    """Seed URLs -> (Page, PageFailure) PCollections, crawled level by level (see the module
    docstring); ``settings``: the HTTP client's (transforms/http_client.py)."""

    def __init__(self, spec: CrawlSpec, settings):
        super().__init__()
        self.spec, self.settings = spec, settings

    def expand(self, seeds):
        return crawl_levels(seeds, self.spec, self.settings)


def crawl_levels(seeds, spec: CrawlSpec, settings):
    """FetchPages' expansion: ``(pages, failures)`` of the level-by-level crawl of ``seeds``."""
    keyed = seeds | "KeyByHost" >> beam.FlatMap(_keyed_seed).with_outputs("failures", main="keyed")
    requests = {"candidates": keyed.keyed} | "Level0Requests" >> _NextLevel(spec.max_pages)
    requested, pages, checks, failures = [requests], [], [], [keyed.failures]
    for depth in range(max(0, spec.max_depth) + 1):
        level_pages, links, level_checks, level_failures = (
            requests | f"Level{depth}" >> _CrawlLevel(depth, spec, settings))
        pages.append(level_pages)
        checks.append(level_checks)
        failures.append(level_failures)
        if depth == spec.max_depth:
            break
        seen = tuple(requested) | f"RequestedToLevel{depth}" >> beam.Flatten()
        requests = ({"candidates": links, "requested": seen}
                    | f"Level{depth + 1}Requests" >> _NextLevel(spec.max_pages))
        requested.append(requests)
    decisions = (
        tuple(checks)
        | "AllChecks" >> beam.Flatten()
        | "GroupChecksByHost" >> beam.GroupByKey()
        | "DecideDuplicates" >> beam.FlatMap(_decide, spec.canonical, spec.duplicate_content)
    )
    outcomes = (
        {"page": tuple(pages) | "AllPages" >> beam.Flatten(), "decision": decisions}
        | "JoinDecisions" >> beam.CoGroupByKey()
        | "Outcome" >> beam.FlatMap(_outcome).with_outputs("failures", main="pages")
    )
    all_failures = (*failures, outcomes.failures) | "AllPageFailures" >> beam.Flatten()
    return outcomes.pages, all_failures
