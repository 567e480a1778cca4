"""Beam metric names: a closed set, so the Dataflow UI and stats.json agree.

Input: nothing. Output: counter helpers used by DoFns. Drop counters are named
after the ``DropReason`` value (``fetch.http_4xx``); progress counters are the
``Counter`` enum below. All live in the ``wit`` namespace.

Beside each Beam counter, ``inc``/``inc_reason`` bump a process-wide tally that
``pipeline.progress`` reads while a local run is going (Beam's FnApiRunner only
reports metrics once ``run()`` returns). The tally sees in-process workers only:
not ``--direct_running_mode=multi_processing`` subprocesses, not Dataflow.
"""

from __future__ import annotations

import collections
import enum
import threading

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
    # duplicate-group label pairs the large-star/small-star rounds left for the one-key finisher
    # (transforms/components.py); ~0 when dedupe.near_cc_rounds is enough
    NEAR_CC_RESIDUAL = "near_cc_residual_edges"
    # near-duplicate LSH edges dropped because the two captions tell the images apart
    # (transforms/dedupe.py VetoEdges, dedupe.near_caption_veto)
    NEAR_CAPTION_VETOED = "near_caption_vetoed_edges"


_LOCAL_TALLY: collections.Counter = collections.Counter()
_LOCAL_LOCK = threading.Lock()


def _tally(name: str, n: int) -> None:
    with _LOCAL_LOCK:
        _LOCAL_TALLY[name] += n


def local_counts() -> dict[str, int]:
    """A snapshot of this process's tally since it started (monotonic; diff two snapshots)."""
    with _LOCAL_LOCK:
        return dict(_LOCAL_TALLY)


def inc(counter: Counter, n: int = 1) -> None:
    Metrics.counter(NAMESPACE, counter.value).inc(n)
    _tally(counter.value, n)


def inc_reason(reason: DropReason, n: int = 1) -> None:
    Metrics.counter(NAMESPACE, reason.value).inc(n)
    _tally(reason.value, n)
