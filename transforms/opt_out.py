"""SummariseOptOut: the site-level opt-out summary of stats.json.

Input: every ``Rejection`` of a run. Output: ``(section, name, value)`` stats values
for WriteStats: ``("opt_out", "total", {reason: n})`` and ``("opt_out", "by_domain",
{domain: {reason: n}})`` over the pairs dropped because a site or the curator said no:
``fetch.robots_disallowed``, ``fetch.noai``,
``fetch.tdm_reserved``, ``extract.page_noai``, ``extract.tdm_reserved`` and every
``blocklist.*`` reason. Other rejections are ignored; nothing is dropped.
``fetch.robots_unavailable`` (RFC 9309 reads a 5xx or unreachable robots.txt as a
complete disallow) is not here: it is mostly a host that is down, not one that said no.

The domain is the host the refusal is about: the page's host for
``blocklist.page_domain`` and the page-level ``extract.*`` opt-outs (a ``<meta>``
on the page), the image URL's host otherwise (robots.txt, tdmrep.json and the
response headers are the image host's). At most ``max_domains`` domains are listed
(most pairs first); the rest are summed under ``"(other domains)"`` so stats.json
stays small on web-scale runs.

Keys at 100M pairs: the counts are combined per domain (``CombinePerKey``, lifted: a domain
with 10M refused pairs is one partial count per worker bundle), then once globally by
``SummaryFn``, whose accumulator keeps at most ``2 * max_domains`` domains and the totals per
reason, however many domains refused (it used to be a ``ToList`` of every (domain, reason)
count on one worker: one entry per refusing domain, ~10^5 on a web crawl).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Iterable
from urllib.parse import urlsplit

import apache_beam as beam

from pipeline.records import DropReason, Rejection

OPT_OUT_REASONS = frozenset(
    [DropReason.FETCH_ROBOTS.value, DropReason.FETCH_NOAI.value,
     DropReason.FETCH_TDM_RESERVED.value, DropReason.EXTRACT_PAGE_NOAI.value, DropReason.EXTRACT_TDM_RESERVED.value]
    + [r.value for r in DropReason if r.stage == "blocklist"])
# Refusals about the page (its host), not about the image.
_PAGE_REASONS = frozenset([DropReason.BLOCKLIST_PAGE_DOMAIN.value, DropReason.EXTRACT_PAGE_NOAI.value,
                           DropReason.EXTRACT_TDM_RESERVED.value])
OTHER_DOMAINS = "(other domains)"


def _host(url: str) -> str:
    try:
        return (urlsplit(url or "").hostname or "").rstrip(".")
    except ValueError:  # a malformed URL (bad port, bad IPv6 literal)
        return ""


def opt_out_domain(rejection: Rejection) -> str:
    url = rejection.page_url if rejection.reason in _PAGE_REASONS else rejection.image_url
    return _host(url) or "(no host)"


def _rank(domain_counts: tuple) -> tuple:
    domain, counts = domain_counts
    return -sum(counts.values()), domain  # most pairs first; a name breaks ties (domains are unique)


class SummaryFn(beam.CombineFn):
    """``(domain, {reason: n})``, one per domain -> the summary dict; the accumulator stays bounded.

    It holds the ``max_domains`` best-ranked domains seen so far (pruned at twice that), the
    total per reason and the number of domains: no more than ``2 * max_domains`` domains
    whatever the number of domains in the run, so the one global combine never holds a list of
    every domain. Each domain comes once (counted per domain before), so the totals are exact
    and "(other domains)" is the totals minus the domains shown.
    """

    def __init__(self, max_domains: int):
        self.max_domains = max_domains

    def create_accumulator(self):
        return [], Counter(), 0

    def _pruned(self, shown: list) -> list:
        if len(shown) <= 2 * self.max_domains:
            return shown
        return sorted(shown, key=_rank)[:self.max_domains]

    def add_input(self, acc, domain_counts):
        shown, total, domains = acc
        shown.append((domain_counts[0], dict(domain_counts[1])))
        total.update(domain_counts[1])
        return self._pruned(shown), total, domains + 1

    def merge_accumulators(self, accumulators):
        shown, total, domains = [], Counter(), 0
        for more, more_total, more_domains in accumulators:
            shown = self._pruned(shown + list(more))
            total.update(more_total)
            domains += more_domains
        return shown, total, domains

    def extract_output(self, acc) -> dict:
        shown, total, domains = acc
        shown = sorted(shown, key=_rank)[:self.max_domains]
        by_domain = {domain: dict(sorted(c.items())) for domain, c in shown}
        other = Counter(total)
        for _, counts in shown:
            other.subtract(counts)
        other = +other  # drops the zeros
        if other:
            by_domain[OTHER_DOMAINS] = dict(sorted(other.items()))
        return {"total": dict(sorted(total.items())), "by_domain": by_domain, "domains": domains}


def per_domain_counts(counts: Iterable[tuple[tuple[str, str], int]]) -> dict:
    """{domain: Counter({reason: n})} from ((domain, reason), n) counts."""
    per_domain: dict = defaultdict(Counter)
    for (domain, reason), n in counts:
        per_domain[domain][reason] += n
    return per_domain


def summarise(counts: Iterable[tuple[tuple[str, str], int]], max_domains: int) -> dict:
    """{"total": {reason: n}, "by_domain": {domain: {reason: n}}, "domains": n} from ((domain,
    reason), n) counts, in memory: what SummariseOptOut computes with the same SummaryFn."""
    fn = SummaryFn(max_domains)
    acc = fn.create_accumulator()
    for item in per_domain_counts(counts).items():
        acc = fn.add_input(acc, item)
    return fn.extract_output(acc)


class _ReasonCounts(beam.CombineFn):
    """reason -> {reason: n} for one domain (at most the dozen opt-out reasons)."""

    def create_accumulator(self):
        return Counter()

    def add_input(self, acc, reason):
        acc[reason] += 1
        return acc

    def merge_accumulators(self, accumulators):
        out = Counter()
        for acc in accumulators:
            out.update(acc)
        return out

    def extract_output(self, acc):
        return dict(acc)


class SummariseOptOut(beam.PTransform):
    """Rejection -> stats values ``("opt_out", name, value)`` (always emitted, zeros included)."""

    def __init__(self, max_domains: int = 1000):
        super().__init__()
        self.max_domains = max_domains

    def expand(self, rejections):
        summary = (
            rejections
            | "OptOutOnly" >> beam.Filter(lambda r: r.reason in OPT_OUT_REASONS)
            | "KeyByDomain" >> beam.Map(lambda r: (opt_out_domain(r), r.reason))
            | "CountPerDomain" >> beam.CombinePerKey(_ReasonCounts())
            | "Summarise" >> beam.CombineGlobally(SummaryFn(self.max_domains))
        )
        return summary | "AsStatsValues" >> beam.FlatMap(
            lambda s: [("opt_out", name, value) for name, value in s.items()])
