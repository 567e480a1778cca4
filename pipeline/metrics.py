"""Beam metric names: a closed set, so the Dataflow UI and stats.json agree.

Input: nothing. Output: counter helpers used by DoFns. Drop counters are named
after the ``DropReason`` value (``fetch.http_4xx``); progress counters are the
``Counter`` enum below. All live in the ``wit`` namespace.
"""

from __future__ import annotations

import enum

from apache_beam.metrics import Metrics

from pipeline.records import DropReason

NAMESPACE = "wit"


class Counter(str, enum.Enum):
    PAGES_FETCHED = "pages_fetched"
    PAIRS_EXTRACTED = "pairs_extracted"
    IMAGES_FETCHED = "images_fetched"
    IMAGES_RESIZED = "images_resized"
    IMAGES_SCORED = "images_scored"
    SAMPLES_WRITTEN = "samples_written"
    SHARDS_WRITTEN = "shards_written"
    REJECTIONS_WRITTEN = "rejections_written"


def inc(counter: Counter, n: int = 1) -> None:
    Metrics.counter(NAMESPACE, counter.value).inc(n)


def inc_reason(reason: DropReason, n: int = 1) -> None:
    Metrics.counter(NAMESPACE, reason.value).inc(n)
