"""WriteStats: ``stats.json`` — the funnel, counts per reason and the accounting identity.

Input: count events, one per element: ``("pairs",)`` per extracted pair,
``("kept",)`` per written sample, ``("drop", stage, reason)`` per rejection,
``("page_ok",)`` / ``("page_fail", reason)`` per crawled page. Output: the
stats.json file (through FileSystems). Counts are computed by the pipeline
itself, so they hold on every runner (Beam metrics are best-effort on some).

``pairs_extracted == kept + rejected`` is checked here and recorded as
``accounting_ok``; a mismatch is logged as an error (it means a lost pair).
Values only known once the pipeline ran (the CLIP threshold a ``keep_fraction``
gave) come as a side input of ``(section, name, value)`` and are set into ``extra``.

``internal_errors``: pairs and pages that met a bug in our code
(``<stage>.internal_error``, pipeline/faults.py): ``total``, ``by_reason`` from
the count events, and ``samples`` — up to ``SAMPLES_PER_REASON`` details per
reason, the smallest keys (so a rerun writes the same file), from
``SampleInternalErrors`` over the rejections and page failures.

``pages.failed_samples``: which pages failed and why — up to ``FAILED_PAGES_PER_REASON``
``{"url", "reason", "detail"}`` per page-failure reason, the smallest URLs, from
``SampleFailedPages`` (a ``("pages", "failed_samples", [...])`` value merged into ``pages``).

Keys at 100M pairs: ``CountEvents`` is a ``Count.PerElement`` (a ``CombinePerKey``, lifted):
the hottest event, ``("pairs",)``, has 100M elements but reaches the shuffle as one partial count
per worker bundle. ``CollectCounts`` then lists the distinct events (one per stage and reason:
a few hundred) and ``AllReasons`` the ``internal_error`` reasons with at most
``SAMPLES_PER_REASON`` samples each (``Top.SmallestPerKey``, lifted too): both kilobytes.
``FailedPageSamples``: the same shape keyed by page-failure reason (~20 reasons, at most
``FAILED_PAGES_PER_REASON`` URLs each, lifted), whatever the number of failed pages.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Mapping, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipeline import shard_format
from pipeline.faults import is_internal
from transforms.output_files import write_atomically

log = logging.getLogger(__name__)

INTERNAL_SECTION = "internal_errors"
SAMPLES_PER_REASON = 3
PAGES_SECTION = "pages"
FAILED_PAGES_PER_REASON = 5


def build_stats(counted: Sequence[tuple], stage_order: Sequence[str], extra: Mapping) -> dict:
    """The stats.json document from ``(event, count)`` pairs."""
    events = Counter()
    for event, n in counted:
        events[tuple(event)] += n
    pairs = events[("pairs",)]
    kept = events[("kept",)]
    dropped_by_stage: dict = {stage: {} for stage in stage_order}
    by_reason: Counter = Counter()
    for event, n in events.items():
        if event[0] == "drop":
            _, stage, reason = event
            dropped_by_stage.setdefault(stage, {})[reason] = n
            by_reason[reason] += n
    rejected = sum(by_reason.values())
    funnel, flowing = [], pairs
    for stage, reasons in dropped_by_stage.items():
        dropped = sum(reasons.values())
        funnel.append({"stage": stage, "in": flowing, "dropped": dict(sorted(reasons.items())),
                       "out": flowing - dropped})
        flowing -= dropped
    page_failures = {e[1]: n for e, n in events.items() if e[0] == "page_fail"}
    internal = internal_errors_section(by_reason, page_failures, (extra.get(INTERNAL_SECTION) or {}).get("samples"))
    stats = {
        "pairs_extracted": pairs,
        "kept": kept,
        "rejected": rejected,
        "accounting_ok": pairs == kept + rejected,
        "rejected_by_reason": dict(sorted(by_reason.items())),
        INTERNAL_SECTION: internal,
        "funnel": funnel,
        PAGES_SECTION: {"fetched": events[("page_ok",)], "failed": sum(page_failures.values()),
                        "failed_by_reason": dict(sorted(page_failures.items()))},
    }
    pages = stats[PAGES_SECTION]
    samples = (extra.get(PAGES_SECTION) or {}).get("failed_samples")
    if samples is not None:  # from SampleFailedPages (wit curate always has it; wit refilter crawls nothing)
        pages["failed_samples"] = list(samples)
    no_page_events = not page_failures and not events[("page_ok",)]
    if no_page_events and "fetched" in (extra.get(PAGES_SECTION) or {}):
        pages = dict(extra[PAGES_SECTION])  # wit refilter crawls nothing: the source's page funnel, carried whole
    stats.update(extra)
    stats[INTERNAL_SECTION] = internal
    stats[PAGES_SECTION] = pages  # counted here; extra adds only the samples
    if not stats["accounting_ok"]:
        log.error("accounting mismatch: %d pairs extracted but %d kept + %d rejected",
                  pairs, kept, rejected)
    return stats


def internal_errors_section(pair_reasons: Mapping, page_reasons: Mapping, samples=None) -> dict:
    """stats.json ``internal_errors``: {"total", "by_reason", "samples"} over pairs and pages."""
    by_reason = Counter({r: n for r, n in pair_reasons.items() if is_internal(r)})
    by_reason.update({r: n for r, n in page_reasons.items() if is_internal(r)})
    return {"total": sum(by_reason.values()), "by_reason": dict(sorted(by_reason.items())),
            "samples": list(samples or [])}


def internal_sample(record) -> tuple:
    """(reason, (key, url, detail)) of a Rejection or PageFailure: what a sample shows."""
    reason = str(getattr(record.reason, "value", record.reason))
    if hasattr(record, "key"):  # Rejection
        return reason, (record.key, record.image_url or record.page_url, record.detail)
    return reason, ("", record.url, record.detail)  # PageFailure


def _samples_value(per_reason: Sequence[tuple]) -> tuple:
    samples = [{"reason": reason, "key": key, "url": url, "detail": detail}
               for reason, picked in sorted(per_reason) for key, url, detail in picked]
    return INTERNAL_SECTION, "samples", samples


def failed_page_sample(failure) -> tuple:
    """(reason, (url, detail)) of a PageFailure."""
    return str(getattr(failure.reason, "value", failure.reason)), (failure.url, failure.detail or "")


def _failed_pages_value(per_reason: Sequence[tuple]) -> tuple:
    samples = [{"url": url, "reason": reason, "detail": detail}
               for reason, picked in sorted(per_reason) for url, detail in picked]
    return PAGES_SECTION, "failed_samples", samples


class SampleFailedPages(beam.PTransform):
    """PageFailure -> one ``("pages", "failed_samples", [...])`` stats value (a few per reason)."""

    def expand(self, failures):
        return (
            failures
            | "ReasonUrl" >> beam.Map(failed_page_sample)
            | "FirstPagesPerReason" >> beam.combiners.Top.SmallestPerKey(FAILED_PAGES_PER_REASON)
            | "AllPageReasons" >> beam.combiners.ToList()
            | "FailedPagesValue" >> beam.Map(_failed_pages_value)
        )


class SampleInternalErrors(beam.PTransform):
    """Rejections and page failures -> one ``("internal_errors", "samples", [...])`` stats value."""

    def expand(self, records):
        return (
            records
            | "OnlyInternal" >> beam.Filter(lambda r: is_internal(getattr(r.reason, "value", r.reason)))
            | "ReasonSample" >> beam.Map(internal_sample)
            | "FirstPerReason" >> beam.combiners.Top.SmallestPerKey(SAMPLES_PER_REASON)
            | "AllReasons" >> beam.combiners.ToList()
            | "SamplesValue" >> beam.Map(_samples_value)
        )


def with_values(extra: Mapping, values: Sequence[tuple]) -> dict:
    """``extra`` with each ``(section, name, value)`` set (sections are copied, not mutated)."""
    merged = dict(extra)
    for section, name, value in sorted(values, key=lambda v: (v[0], v[1])):
        merged[section] = {**merged.get(section, {}), name: value}
    return merged


def _write(counted, output_dir, stage_order, extra, values=()):
    stats = build_stats(counted, stage_order, with_values(extra, values))
    payload = (json.dumps(stats, indent=2, sort_keys=False) + "\n").encode("utf-8")
    write_atomically(FileSystems.join(output_dir, shard_format.STATS_FILE), payload)


class WriteStats(beam.PTransform):
    """Count events -> OUT/stats.json."""

    def __init__(self, output_dir: str, stage_order: Sequence[str], extra: Mapping, values=None):
        super().__init__()
        self.output_dir = output_dir
        self.stage_order = list(stage_order)
        self.extra = dict(extra)
        self.values = values  # optional PCollection of (section, name, value)

    def expand(self, events):
        values = events.pipeline | "NoStatsValues" >> beam.Create([]) if self.values is None else self.values
        return (
            events
            | "CountEvents" >> beam.combiners.Count.PerElement()
            | "CollectCounts" >> beam.combiners.ToList()
            | "WriteStatsJson" >> beam.Map(_write, self.output_dir, self.stage_order, self.extra,
                                           beam.pvalue.AsList(values))
        )
