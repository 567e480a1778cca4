"""Sources: where seed URLs come from.

Input: a text file of seed URLs (one per line, ``#`` comments and blank lines
ignored; local or any Beam filesystem path) or an in-memory list. Output: a
PCollection of seed URL strings. Lines that are not usable http(s) URLs (another
scheme, no host, a bad IPv6 literal or port, over 2,048 characters:
transforms/url_guard.py) are logged and skipped (they produce no pairs, so nothing
is lost from the accounting).

A line whose parsing raises an unexpected exception is logged, counted
(``crawl.internal_error``) and skipped; with ``with_failures`` it is also a
``PageFailure`` of that reason, for the page funnel in stats.json
(pipeline/faults.py: the detail names the exception and where).
"""

from __future__ import annotations

import logging
from typing import Optional, Sequence

import apache_beam as beam

from pipeline import faults, metrics
from pipeline.records import DropReason, PageFailure
from transforms.url_guard import url_problem

log = logging.getLogger(__name__)


def parse_seed_line(line: str) -> Optional[str]:
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    problem = url_problem(text)
    if problem:
        log.warning("skipping seed %r: %s", text[:200], problem)
        return None
    return text


def decode_seed_line(raw: bytes) -> str:
    """A seeds-file line as text; one that is not UTF-8 is logged and skipped ("")."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        log.warning("skipping seed line that is not UTF-8: %r", raw[:200])
        return ""


def parse_seed_isolated(line: str):
    """``parse_seed_line``; an unexpected exception gives that line's ``PageFailure`` instead."""
    try:
        return parse_seed_line(line)
    except Exception as exc:  # one seed line that trips a bug costs that line, not the run
        reason = DropReason.CRAWL_INTERNAL
        text = str(line).strip()[:300]
        return PageFailure(text, reason, faults.internal_error(reason, exc, text))


def _seeds_or_failure(line: str):
    out = parse_seed_isolated(line)
    if isinstance(out, PageFailure):
        metrics.inc_reason(out.reason)
        yield beam.pvalue.TaggedOutput("failures", out)
    elif out:
        yield out


class ReadSeeds(beam.PTransform):
    """A seeds file (or list) -> PCollection[str]; with ``with_failures``, (seeds, PageFailure)."""

    def __init__(self, path: Optional[str] = None, urls: Sequence[str] = (), with_failures: bool = False):
        super().__init__()
        if not path and not urls:
            raise ValueError("ReadSeeds needs a seeds file or URLs")
        self.path, self.urls, self.with_failures = path, list(urls), with_failures

    def expand(self, pbegin):
        if self.path:
            # As bytes: ReadFromText's UTF-8 coder fails the whole read on one latin-1 byte.
            lines = (pbegin | "ReadSeedFile" >> beam.io.ReadFromText(self.path, coder=beam.coders.BytesCoder())
                     | "DecodeSeedLines" >> beam.Map(decode_seed_line))
        else:
            lines = pbegin | "SeedList" >> beam.Create(self.urls)
        out = lines | "ParseSeeds" >> beam.FlatMap(_seeds_or_failure).with_outputs("failures", main="seeds")
        return (out.seeds, out.failures) if self.with_failures else out.seeds
