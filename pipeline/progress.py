"""Live progress of a local ``wit curate`` run: pages, pairs, images, kept, dropped, rate, elapsed.

Input: the process-wide tally that ``pipeline.metrics`` keeps beside every Beam
counter (``metrics.local_counts()``), polled from a background thread while the
pipeline runs. Output: one status line redrawn in place on a terminal (rich), or a
plain ``progress: ...`` log line every ``interval`` seconds when stderr is not a
terminal. Nothing is dropped or written. "kept" counts samples written to shards,
which the shard writer does after its group-by, so it jumps near the end of a run;
"img/s" is the average since the start.

Why a tally and not ``result.metrics()``: Beam's FnApiRunner runs the whole
pipeline inside ``run()`` and only returns its metrics when it is done, so there
is nothing to poll. The tally sees DoFns that run in this process (the default
in-memory and ``multi_threading`` modes); ``multi_processing`` workers and
Dataflow workers keep their own, so there the same numbers are Beam counters
in the ``wit`` namespace (the Dataflow UI's "Custom counters").
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Optional, TextIO

from pipeline import metrics

log = logging.getLogger(__name__)

PAGE_FAILURE_PREFIX = "crawl."


@dataclass(frozen=True)
class Snapshot:
    """Counts since the run started."""

    pages: int
    pages_failed: int
    pairs: int
    images: int
    kept: int
    dropped: int
    elapsed_s: float

    @property
    def images_per_s(self) -> float:
        return self.images / self.elapsed_s if self.elapsed_s > 0 else 0.0


def snapshot(counts: Mapping[str, int], baseline: Mapping[str, int], elapsed_s: float) -> Snapshot:
    """Counts minus the baseline taken at start (the tally is process-wide and monotonic)."""
    delta = {k: v - baseline.get(k, 0) for k, v in counts.items()}
    reasons = {k: v for k, v in delta.items() if "." in k}
    page_failures = sum(v for k, v in reasons.items() if k.startswith(PAGE_FAILURE_PREFIX))
    return Snapshot(
        pages=delta.get(metrics.Counter.PAGES_FETCHED.value, 0),
        pages_failed=page_failures,
        pairs=delta.get(metrics.Counter.PAIRS_EXTRACTED.value, 0),
        images=delta.get(metrics.Counter.IMAGES_FETCHED.value, 0),
        kept=delta.get(metrics.Counter.SAMPLES_WRITTEN.value, 0),
        dropped=sum(reasons.values()) - page_failures,
        elapsed_s=elapsed_s,
    )


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def format_line(snap: Snapshot) -> str:
    """One line, the same words on a terminal and in logs."""
    failed = f" ({snap.pages_failed} failed)" if snap.pages_failed else ""
    return (f"pages {snap.pages}{failed} | pairs {snap.pairs} | images {snap.images} | "
            f"kept {snap.kept} | dropped {snap.dropped} | {snap.images_per_s:.1f} img/s | "
            f"{_clock(snap.elapsed_s)}")


class CurateProgress:
    """Context manager around a local pipeline run that reports the tally as it grows.

    ``stream`` decides the style: a terminal gets a rich live line, anything else a
    log line every ``interval`` seconds (and one at the end).
    """

    def __init__(self, stream: Optional[TextIO] = None, interval: float = 10.0,
                 counts: Callable[[], Mapping[str, int]] = metrics.local_counts):
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self._counts = counts
        self._baseline: Mapping[str, int] = {}
        self._start = 0.0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._live = None
        self._swapped: list = []

    def current(self) -> Snapshot:
        return snapshot(self._counts(), self._baseline, time.monotonic() - self._start)

    def __enter__(self) -> "CurateProgress":
        self._baseline = dict(self._counts())
        self._start = time.monotonic()
        if _is_terminal(self.stream):
            self._start_live()
        else:
            self._thread = threading.Thread(target=self._log_loop, name="wit-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._live is not None:
            self._restore_log_streams()
            self._live.stop()
        log.info("progress: %s", format_line(self.current()))

    def _log_loop(self) -> None:
        while not self._stop.wait(self.interval):
            log.info("progress: %s", format_line(self.current()))

    def _start_live(self) -> None:
        from rich.console import Console
        from rich.live import Live
        from rich.text import Text

        console = Console(file=self.stream)
        self._live = Live(console=console, refresh_per_second=4, transient=True,
                          get_renderable=lambda: Text(format_line(self.current()), style="bold cyan",
                                                     no_wrap=True, overflow="ellipsis"))
        original = sys.stderr
        self._live.start()
        if sys.stderr is not original:  # rich now proxies stderr (it does on a terminal)
            self._redirect_log_streams((original, self.stream), sys.stderr)

    def _redirect_log_streams(self, sources, target) -> None:
        # Log handlers hold the stream they were made with; point them at rich's
        # proxy so log lines print above the status line instead of through it.
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream in sources:
                previous = handler.setStream(target)
                if previous is not None:
                    self._swapped.append((handler, previous))

    def _restore_log_streams(self) -> None:
        for handler, previous in self._swapped:
            handler.setStream(previous)
        self._swapped.clear()


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def progress_for(options, local: bool, enabled: bool = True):
    """A ``CurateProgress`` when this run's DoFns execute in this process, else a no-op.

    ``options``: the run's ``PipelineOptions``; ``local``: the FnApiRunner was chosen.
    """
    if not enabled:
        return contextlib.nullcontext()
    if not local:
        log.info("live progress is shown for local runs; on Dataflow watch the 'wit' custom counters")
        return contextlib.nullcontext()
    from apache_beam.options.pipeline_options import DirectOptions

    if options.view_as(DirectOptions).direct_running_mode == "multi_processing":
        log.info("live progress is not available with multi_processing workers (counts come at the end)")
        return contextlib.nullcontext()
    return CurateProgress()
