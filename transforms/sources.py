"""Sources: where seed URLs come from.

Input: a text file of seed URLs (one per line, ``#`` comments and blank lines
ignored; local or any Beam filesystem path) or an in-memory list. Output: a
PCollection of seed URL strings. Lines that are not http(s) URLs are logged and
skipped (they produce no pairs, so nothing is lost from the accounting).
"""

from __future__ import annotations

import logging
from typing import Optional, Sequence
from urllib.parse import urlsplit

import apache_beam as beam

log = logging.getLogger(__name__)


def parse_seed_line(line: str) -> Optional[str]:
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    if urlsplit(text).scheme not in ("http", "https"):
        log.warning("skipping seed that is not an http(s) URL: %r", text[:200])
        return None
    return text


class ReadSeeds(beam.PTransform):
    """A seeds file (or list) -> PCollection[str]."""

    def __init__(self, path: Optional[str] = None, urls: Sequence[str] = ()):
        super().__init__()
        if not path and not urls:
            raise ValueError("ReadSeeds needs a seeds file or URLs")
        self.path, self.urls = path, list(urls)

    def expand(self, pbegin):
        if self.path:
            lines = pbegin | "ReadSeedFile" >> beam.io.ReadFromText(self.path)
        else:
            lines = pbegin | "SeedList" >> beam.Create(self.urls)
        return lines | "ParseSeeds" >> beam.FlatMap(lambda line: [u] if (u := parse_seed_line(line)) else [])
