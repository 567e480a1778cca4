"""The whole curation flow, and the only place stages are wired together.

Input: a ``CurateConfig``, seed URLs and an output directory. Output: a Beam
pipeline graph that writes the output contract (see pipeline/shard_format.py).

    seeds -> FetchPages -> ExtractAltText ┐
    URL lists -> ReadUrlList ─────────────┴-> CaptionRules -> DedupeUrls
          -> FetchImages (download + ResizeImages, one thread each) -> ImageRules -> DedupeImages
          -> ScoreClip -> ClipThreshold -> WriteShards
    every stage's rejects -> WriteRejections;  counts of everything -> WriteStats

Every extracted pair leaves exactly one way: a shard, or a rejection row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import apache_beam as beam

from filters.base import ApplyRules
from filters.caption_rules import caption_rules
from filters.clip_threshold import ClipThresholdRule
from filters.image_rules import image_rules
from pipeline.config import CurateConfig
from transforms.crawl import FetchPages
from transforms.dedupe import DedupeImages, DedupeUrls
from transforms.extract_alt_text import ExtractAltText
from transforms.fetch import FetchImages, client_settings
from transforms.resize import resize_spec
from transforms.score import ScoreClip, SkipScoring, scorer_spec
from transforms.sources import ReadSeeds
from transforms.url_list import ReadUrlList
from transforms.write_shards import WriteRejections, WriteShards
from transforms.write_stats import WriteStats

# Stage labels in flow order: Beam step names (shown on Dataflow) and funnel rows.
STAGES = ("ExtractAltText", "CaptionRules", "DedupeUrls", "FetchImages", "ResizeImages",
          "ImageRules", "DedupeImages", "ClipThreshold")


@dataclass(frozen=True)
class Inputs:
    """Where pairs come from: seed URLs to crawl and/or img2dataset-style URL lists."""

    seeds_file: Optional[str] = None
    seed_urls: Sequence[str] = ()
    url_list: Optional[str] = None  # path or glob
    url_col: str = "url"
    caption_col: str = "caption"

    @property
    def crawls(self) -> bool:
        return bool(self.seeds_file or self.seed_urls)


def _read_inputs(p: beam.Pipeline, cfg: CurateConfig, inputs: Inputs):
    """(pages, page_failures, extracted pairs, unusable-pair rejections) from every input."""
    sources, unusable = [], []
    if inputs.crawls:
        seeds = p | "ReadSeeds" >> ReadSeeds(inputs.seeds_file, inputs.seed_urls)
        page_client = client_settings(cfg.fetch, pool_size=cfg.crawl.concurrency)
        pages, page_failures = seeds | "FetchPages" >> FetchPages(cfg.crawl, page_client)
        extracted, bad = pages | "ExtractAltText" >> ExtractAltText()
        sources.append(extracted)
        unusable.append(bad)
    else:
        pages = p | "NoPages" >> beam.Create([])
        page_failures = p | "NoPageFailures" >> beam.Create([])
    if inputs.url_list:
        listed, bad = p | "ReadUrlList" >> ReadUrlList(inputs.url_list, inputs.url_col, inputs.caption_col)
        sources.append(listed)
        unusable.append(bad)
    extracted = tuple(sources) | "AllPairs" >> beam.Flatten()
    return pages, page_failures, extracted, tuple(unusable) | "AllUnusable" >> beam.Flatten()


def _events(pcoll, label: str, make):
    return pcoll | label >> beam.Map(make)


def build_pipeline(p: beam.Pipeline, cfg: CurateConfig, inputs: Inputs, output_dir: str,
                   score_handler=None) -> None:
    """Add the curation graph to ``p``. ``score_handler`` replaces the open_clip one (tests)."""
    client = client_settings(cfg.fetch)
    rejected = {}
    pages, page_failures, extracted, rejected["ExtractAltText"] = _read_inputs(p, cfg, inputs)
    pairs, rejected["CaptionRules"] = extracted | "CaptionRules" >> ApplyRules(caption_rules(cfg.caption))
    if cfg.dedupe.url:
        pairs, rejected["DedupeUrls"] = pairs | "DedupeUrls" >> DedupeUrls()
    # Download and resize run in the same worker threads (transforms/fetch.py);
    # the funnel still shows them as two stages, split by reason.
    images, fetch_rejects = pairs | "FetchImages" >> FetchImages(
        client, cfg.fetch.concurrency, cfg.fetch.per_host_concurrency, resize=resize_spec(cfg.resize))
    rejected["FetchImages"], rejected["ResizeImages"] = fetch_rejects | "SplitFetchResize" >> beam.Partition(
        lambda rej, _n: int(rej.reason.startswith("image.")), 2)
    images, rejected["ImageRules"] = images | "ImageRules" >> ApplyRules(image_rules(cfg.image))
    if cfg.dedupe.image_exact:
        images, rejected["DedupeImages"] = images | "DedupeImages" >> DedupeImages()
    if cfg.score.enabled:
        scored = images | "ScoreClip" >> ScoreClip(scorer_spec(cfg.score), score_handler)
        kept, rejected["ClipThreshold"] = scored | "ClipThreshold" >> ApplyRules(
            [ClipThresholdRule(cfg.score.min_score)])
    else:
        kept = images | "SkipScoring" >> SkipScoring()

    kept | "WriteShards" >> WriteShards(output_dir, cfg.output.samples_per_shard)
    all_rejected = tuple(rejected.values()) | "AllRejections" >> beam.Flatten()
    all_rejected | "WriteRejections" >> WriteRejections(output_dir, cfg.output.rejections_per_file)

    events = [
        _events(pages, "PageOkEvents", lambda _: ("page_ok",)),
        _events(page_failures, "PageFailEvents", lambda f: ("page_fail", f.reason.value)),
        _events(kept, "KeptEvents", lambda _: ("kept",)),
    ]
    for stage, rej in rejected.items():
        events.append(_events(rej, f"DropEvents{stage}", lambda r, s=stage: ("drop", s, r.reason)))
    # pairs_extracted counts what extraction emitted (both outputs), independently of the sinks.
    events.append(_events(extracted, "PairEvents", lambda _: ("pairs",)))
    events.append(_events(rejected["ExtractAltText"], "UnusablePairEvents", lambda _: ("pairs",)))
    stats_extra = {
        "stages": [s for s in STAGES if s in rejected],
        "thresholds": {"clip_min_score": cfg.score.min_score if cfg.score.enabled else None,
                       "caption_min_words": cfg.caption.min_words,
                       "caption_min_chars": cfg.caption.min_chars,
                       "image_min_side": cfg.image.min_side,
                       "image_max_aspect": cfg.image.max_aspect},
        "scorer": f"{cfg.score.model}/{cfg.score.pretrained}" if cfg.score.enabled else None,
        "config_hash": cfg.config_hash(),
    }
    (tuple(events) | "AllEvents" >> beam.Flatten()
     | "WriteStats" >> WriteStats(output_dir, stats_extra["stages"], stats_extra))

