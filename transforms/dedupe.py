"""DedupeUrls and DedupeImages: one pair per image URL, one per exact image.

Input: ``AltPair`` (DedupeUrls) or ``ResizedImage`` (DedupeImages). Output:
``(kept, rejected)``; the dropped duplicates get ``dedupe.url`` or
``dedupe.image_exact`` with the surviving key in ``detail``.

Which member of a group survives is deterministic, so reruns agree:
- URLs (normalised, fragment dropped): the pair from the smallest page URL,
  then the earliest ``<img>`` on that page.
- Image bytes (sha256 of the download): the pair with the smallest image URL,
  then page URL and position.
"""

from __future__ import annotations

from typing import Callable

import apache_beam as beam

from pipeline import metrics
from pipeline.records import AltPair, DropReason, Rejection, ResizedImage, pair_of
from transforms.crawl import normalize_url


def url_order(pair: AltPair) -> tuple:
    return (pair.page_url, pair.position, pair.key)


def image_order(image: ResizedImage) -> tuple:
    pair = image.pair
    return (pair.image_url, pair.page_url, pair.position, pair.key)


def split_group(records: list, order: Callable, reason: DropReason):
    """(survivor, [Rejection ...]) for one group of duplicates."""
    ranked = sorted(records, key=order)
    survivor = ranked[0]
    detail = f"duplicate of {pair_of(survivor).key}"
    return survivor, [Rejection.of(pair_of(r), reason, detail) for r in ranked[1:]]


class _PickSurvivorFn(beam.DoFn):
    def __init__(self, order: Callable, reason: DropReason):
        self.order = order
        self.reason = reason

    def process(self, keyed_group):
        _key, records = keyed_group
        survivor, rejected = split_group(list(records), self.order, self.reason)
        yield survivor
        for rej in rejected:
            metrics.inc_reason(self.reason)
            yield beam.pvalue.TaggedOutput("rejected", rej)


class _DedupeBy(beam.PTransform):
    def __init__(self, key_fn: Callable, order: Callable, reason: DropReason):
        super().__init__()
        self.key_fn, self.order, self.reason = key_fn, order, reason

    def expand(self, records):
        out = (
            records
            | "KeyForDedupe" >> beam.Map(lambda r, f=self.key_fn: (f(r), r))
            | "GroupDuplicates" >> beam.GroupByKey()
            | "PickSurvivor" >> beam.ParDo(_PickSurvivorFn(self.order, self.reason))
            .with_outputs("rejected", main="kept")
        )
        return out.kept, out.rejected


def _url_key(pair: AltPair) -> str:
    return normalize_url(pair.image_url)


def _sha_key(image: ResizedImage) -> str:
    return image.sha256


class DedupeUrls(_DedupeBy):
    """AltPair -> (one pair per normalised image URL, Rejection dedupe.url)."""

    def __init__(self):
        super().__init__(_url_key, url_order, DropReason.DEDUPE_URL)


class DedupeImages(_DedupeBy):
    """ResizedImage -> (one per sha256 of the downloaded bytes, Rejection dedupe.image_exact)."""

    def __init__(self):
        super().__init__(_sha_key, image_order, DropReason.DEDUPE_IMAGE_EXACT)
