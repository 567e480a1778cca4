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


def summarise(counts: Iterable[tuple[tuple[str, str], int]], max_domains: int) -> dict:
    """{"total": {reason: n}, "by_domain": {domain: {reason: n}}} from ((domain, reason), n) counts."""
    per_domain: dict = defaultdict(Counter)
    for (domain, reason), n in counts:
        per_domain[domain][reason] += n
    ranked = sorted(per_domain.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    shown, rest = ranked[:max_domains], ranked[max_domains:]
    by_domain = {domain: dict(sorted(c.items())) for domain, c in shown}
    if rest:
        other = sum((c for _, c in rest), Counter())
        by_domain[OTHER_DOMAINS] = dict(sorted(other.items()))
    total = sum(per_domain.values(), Counter())
    return {"total": dict(sorted(total.items())), "by_domain": by_domain,
            "domains": len(per_domain)}


class SummariseOptOut(beam.PTransform):
    """Rejection -> stats values ``("opt_out", name, value)`` (always emitted, zeros included)."""

    def __init__(self, max_domains: int = 1000):
        super().__init__()
        self.max_domains = max_domains

    def expand(self, rejections):
        summary = (
            rejections
            | "OptOutOnly" >> beam.Filter(lambda r: r.reason in OPT_OUT_REASONS)
            | "KeyByDomain" >> beam.Map(lambda r: ((opt_out_domain(r), r.reason), 1))
            | "CountPerDomain" >> beam.CombinePerKey(sum)
            | "CollectDomains" >> beam.combiners.ToList()
            | "Summarise" >> beam.Map(summarise, self.max_domains)
        )
        return summary | "AsStatsValues" >> beam.FlatMap(
            lambda s: [("opt_out", name, value) for name, value in s.items()])
