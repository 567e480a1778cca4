"""DropBoilerplate: alt text a site repeats on many different images is template, not description.

Input: ``AltPair`` (after CaptionRules). Output: ``(kept, rejected)`` — every
pair whose (site, normalised caption) names more than ``max_images`` distinct
image URLs is dropped with ``caption.boilerplate`` ("Read more", "Product
image", a shop's name on every thumbnail), all of them: no copy of template
text is a caption. The site is the page's host; pairs without a page (URL
lists) have no site and pass through. One image repeated on every page (a
logo) is one distinct URL, left to DedupeUrls.

Shape: pairs are keyed by (site, caption) and grouped, a global count no rule
of ApplyRules can make; only pairs travel through the shuffle, no image bytes.

Largest key at 100M pairs: the most repeated (site, caption) of the biggest site, and every pair
with it, kept or dropped: a caption a wiki puts under the same icon on every page ("Edit this at
Wikidata") can be on millions of pages of one host, ~0.5 KB per AltPair (bench/record_sizes.py),
so a hot key of a few GB that one worker iterates. ``_JudgeGroupFn`` streams the group (a set of
at most ``_COUNT_CAP`` URLs, then a second pass), so memory holds on runners whose grouped
values are lazy (Dataflow); the time of that one key is the straggler. docs/scale.md
"What would break first" has the fix (count distinct URLs per key with a combiner).
"""

from __future__ import annotations

from typing import Optional
from urllib.parse import urlsplit

import apache_beam as beam

from filters.caption_rules import normalise_caption
from pipeline import metrics
from pipeline.records import AltPair, DropReason, Rejection

_COUNT_CAP = 100_000  # distinct URLs counted exactly per group, for the detail; more is "more than"


def boilerplate_key(pair: AltPair) -> Optional[tuple[str, str]]:
    """(site host, normalised caption), or None for pairs without a page or a caption."""
    site = urlsplit(pair.page_url).netloc.lower() if pair.page_url else ""
    caption = normalise_caption(pair.caption)
    return (site, caption) if site and caption else None


def distinct_images(pairs, cap: int = _COUNT_CAP) -> int:
    """Distinct image URLs among ``pairs``, counted up to ``cap`` + 1."""
    urls: set = set()
    for pair in pairs:
        urls.add(pair.image_url)
        if len(urls) > cap:
            break
    return len(urls)


class _JudgeGroupFn(beam.DoFn):
    def __init__(self, max_images: int):
        self.max_images = max_images

    def process(self, key_and_pairs):
        (site, caption), pairs = key_and_pairs
        n = distinct_images(pairs)  # a grouped iterable can be iterated again
        if n <= self.max_images:
            yield from pairs
            return
        count = f"more than {_COUNT_CAP}" if n > _COUNT_CAP else str(n)
        detail = f"{caption[:80]!r} on {count} distinct images of {site} (max {self.max_images})"
        for pair in pairs:
            metrics.inc_reason(DropReason.CAPTION_BOILERPLATE)
            yield beam.pvalue.TaggedOutput("rejected", Rejection.of(pair, DropReason.CAPTION_BOILERPLATE, detail))


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
        judged = (split.keyed
                  | "GroupBySiteCaption" >> beam.GroupByKey()
                  | "Judge" >> beam.ParDo(_JudgeGroupFn(self.max_images)).with_outputs("rejected", main="kept"))
        kept = (judged.kept, split.unkeyed) | "AllKept" >> beam.Flatten()
        return kept, judged.rejected
