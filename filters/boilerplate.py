"""DropBoilerplate: alt text a site repeats on many different images is template, not description.

Input: ``AltPair`` (after CaptionRules). Output: ``(kept, rejected)`` — every
pair whose (site, normalised caption with its digits folded) names more than ``max_images``
distinct image URLs is dropped with ``caption.boilerplate`` ("Read more", "Product
image", a shop's name on every thumbnail), all of them: no copy of template
text is a caption. The site is the page's host; pairs without a page (URL
lists) have no site and pass through. One image repeated on every page (a
logo) is one distinct URL, left to DedupeUrls.

Shape: the distinct image URLs of each (site, caption) are counted by a ``CombinePerKey``
(``DistinctUrls``: a set capped at ``_COUNT_CAP`` + 1 URLs), which Beam combines on each worker
before the shuffle; the keys over ``max_images`` reach the pairs as a side input, so the pairs
themselves never cross a shuffle here, only (key, URL) partial sets do.

Keys at 100M pairs: the most repeated (site, caption) of the biggest site — a caption a wiki puts
under the same icon on every page ("Edit this at Wikidata") can be on millions of pages — is one
partial set per worker bundle (one URL for that icon), not millions of pairs on one key (as it
was when the pairs were grouped); a key with many distinct URLs sends at most ``_COUNT_CAP`` + 1
of them per bundle, and its merged set stays under that (~13 MB). The side input holds one entry per boilerplate (site,
caption): ~100 bytes each, ~10^5 on a web crawl of 10M pages (an estimate), ~10 MB per worker.
"""

from __future__ import annotations

from typing import Optional
from urllib.parse import urlsplit

import apache_beam as beam

from filters.caption_rules import boilerplate_form
from pipeline import metrics
from pipeline.records import AltPair, DropReason, Rejection

_COUNT_CAP = 100_000  # distinct URLs counted exactly per group, for the detail; more is "more than"


def boilerplate_key(pair: AltPair) -> Optional[tuple[str, str]]:
    """(site host, caption in ``boilerplate_form``: normalised, digits folded), or None for pairs
    without a page or a caption. Folding the digits makes "photo No. 1" ... "photo No. 850" one
    template, which an exact match never sees twice."""
    site = urlsplit(pair.page_url).netloc.lower() if pair.page_url else ""
    caption = boilerplate_form(pair.caption)
    return (site, caption) if site and caption else None


class DistinctUrls(beam.CombineFn):
    """Image URLs of one (site, caption) key -> how many distinct ones, counted up to ``cap`` + 1.

    The accumulator is a set capped at ``cap`` + 1 URLs: a partial set that stopped growing
    already proves "more than ``cap``", and partial sets that did not are exact, so merging
    them gives the same answer as one pass over every URL.
    """

    def __init__(self, cap: int = _COUNT_CAP):
        self.cap = cap

    def create_accumulator(self):
        return set()

    def add_input(self, urls, url):
        if len(urls) <= self.cap:
            urls.add(url)
        return urls

    def merge_accumulators(self, accumulators):
        merged: set = set()
        for urls in accumulators:
            for url in urls:
                if len(merged) > self.cap:
                    return merged
                merged.add(url)
        return merged

    def extract_output(self, urls) -> int:
        return len(urls)


def distinct_images(pairs, cap: int = _COUNT_CAP) -> int:
    """Distinct image URLs among ``pairs``, counted up to ``cap`` + 1 (DistinctUrls in memory)."""
    fn = DistinctUrls(cap)
    urls = fn.create_accumulator()
    for pair in pairs:
        urls = fn.add_input(urls, pair.image_url)
    return fn.extract_output(urls)


def boilerplate_detail(site: str, caption: str, n: int, max_images: int) -> str:
    count = f"more than {_COUNT_CAP}" if n > _COUNT_CAP else str(n)
    return f"{caption[:80]!r} on {count} distinct images of {site} (max {max_images})"


class _JudgeFn(beam.DoFn):
    def __init__(self, max_images: int):
        self.max_images = max_images

    def process(self, key_and_pair, over: dict):
        key, pair = key_and_pair
        n = over.get(key)
        if n is None:
            yield pair
            return
        metrics.inc_reason(DropReason.CAPTION_BOILERPLATE)
        yield beam.pvalue.TaggedOutput("rejected", Rejection.of(
            pair, DropReason.CAPTION_BOILERPLATE, boilerplate_detail(*key, n, self.max_images)))


def _key_or_pass(pair: AltPair):
    key = boilerplate_key(pair)
    if key is None:
        yield beam.pvalue.TaggedOutput("unkeyed", pair)
    else:
        yield key, pair


class DropBoilerplate(beam.PTransform):
    """AltPair -> (kept, rejected): caption.boilerplate over ``max_images`` distinct images of a site."""

    def __init__(self, max_images: int):
        super().__init__()
        if max_images < 1:
            raise ValueError("DropBoilerplate needs max_images >= 1 (leave the stage out to turn it off)")
        self.max_images = max_images

    def expand(self, pairs):
        split = pairs | "KeyBySiteCaption" >> beam.FlatMap(_key_or_pass).with_outputs("unkeyed", main="keyed")
        over = (split.keyed
                | "ImageUrlOf" >> beam.Map(lambda kv: (kv[0], kv[1].image_url))
                | "CountDistinctImages" >> beam.CombinePerKey(DistinctUrls(_COUNT_CAP))
                | "OverTheLimit" >> beam.Filter(lambda kv, limit: kv[1] > limit, self.max_images))
        judged = (split.keyed
                  | "Judge" >> beam.ParDo(_JudgeFn(self.max_images), over=beam.pvalue.AsDict(over))
                  .with_outputs("rejected", main="kept"))
        kept = (judged.kept, split.unkeyed) | "AllKept" >> beam.Flatten()
        return kept, judged.rejected
