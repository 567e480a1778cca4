"""The whole curation flow, and the only place stages are wired together.

Input: a ``CurateConfig``, seed URLs and an output directory. Output: a Beam
pipeline graph that writes the output contract (see pipeline/shard_format.py).

    seeds -> FetchPages ───┬-> ExtractAltText ┐
    WARCs -> ReadWarc pages ┘                  │
             ReadWarc WAT pairs ───────────────┤
    URL lists -> ReadUrlList ──────────────────┴-> [ApplyBlocklists] -> CaptionRules [-> LicenseRules] -> DropBoilerplate
          -> DedupeUrls (or DedupeUrlCaptions) [-> BalanceByMetadata (balance.enabled; or after DedupeNear)]
          [-> UseArchivedImages: pairs whose image the WARC holds -> ResizeImages]
          -> FetchImages (download + ResizeImages, one thread each; bytes spilled to OUT/_work/images)
          -> ImageRules -> HashImages
          [-> BlockImageHashes] -> DedupeImages -> DedupeNear -> ScoreClip [-> TagSafety [-> SafetyFilter]]
          -> ClipThreshold [-> SemanticDedupe] -> WriteShards
                                           ScoreClip -> WriteEmbeddings
    every stage's rejects -> WriteRejections (-> SummariseOptOut);  counts of everything -> WriteStats
    kept samples -> CountLicenses (the licence mix in stats.json ``license.kept``)

The blocklists (filters/blocklist.py) run before anything is downloaded (URL lists)
and right after hashing, before dedupe (hash lists, and URL lists on the final URL),
so every copy of a listed image is dropped as listed. LicenseRules (``license.allow``,
filters/license_rules.py) also runs before anything is downloaded. TagSafety reads the embeddings
ScoreClip made (transforms/safety_tags.py); with ``best_clip_score`` it follows DedupeNear.

Where DedupeNear runs: before ScoreClip, so duplicates are never scored (the model is
the expensive step), unless the survivor policy is ``best_clip_score``, which needs
the scores: then ScoreClip -> DedupeNear -> ClipThreshold. Either way a duplicate is
dropped as ``dedupe.image_near`` whatever its score, and the threshold (or the
``keep_fraction`` quantile) is taken over one image per group. SemanticDedupe needs
the embeddings and runs last, on what the threshold kept (fewer, cleaner images).

``wit refilter`` wires the same threshold and dedupe stages over a finished
output in pipeline/build_refilter.py.

Every extracted pair leaves exactly one way: a shard, or a rejection row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import apache_beam as beam

from filters.base import ApplyRules
from filters.blocklist import ApplyBlocklists, BlockImageHashes, blocklist_stats
from filters.boilerplate import DropBoilerplate
from filters.caption_rules import caption_rules
from filters.short_caption import short_caption_rules
from filters.clip_threshold import ClipThreshold, ComputeClipThreshold
from filters.dedupe_policy import SurvivorPolicy
from filters.image_rules import image_rules
from filters.license_rules import license_rules
from filters.safety import safety_rules
from pipeline.config import CurateConfig
from pipeline.outputs import STAGES, stats_extra, to_events, write_outputs  # noqa: F401  (STAGES: the funnel order)
from pipeline.specs import (balance_spec, blocklist_spec, boilerplate_max_images, caption_spec, client_settings,
                            crawl_spec, extract_spec, fetch_spec, image_spec, license_allow, near_dedupe_spec,
                            resize_spec, safety_spec, safety_thresholds, samples_per_shard, scorer_spec,
                            semantic_spec, survivor_policy, threshold_spec, warc_limits)
from transforms.balance import BalanceByMetadata
from transforms.checkpoint import Checkpointed, work_dir
from transforms.crawl_frontier import FetchPages
from transforms.dedupe import DedupeImages, DedupeNear, DedupeUrlCaptions, DedupeUrls
from transforms.embeddings import WriteEmbeddings
from transforms.hashing import HashImages
from transforms.image_store import IMAGES, SpillImages
from transforms.extract_alt_text import ExtractAltText
from transforms.fetch import FetchImages
from transforms.resize import ResizeImages
from transforms.safety_tags import MakeTagger, TagSafety, safety_stats
from transforms.score import ScoreClip, SkipScoring
from transforms.semantic_dedupe import SemanticDedupe
from transforms.sources import ReadSeeds
from transforms.url_list import ReadUrlList
from transforms.warc import ReadWarc, UseArchivedImages

# Stage labels in flow order (Beam step names, funnel rows): STAGES in pipeline/outputs.py; a new
# stage that drops adds its label there. build.py wires; outputs.py writes; specs.py adapts the config.


@dataclass(frozen=True)
class Inputs:
    """Where pairs come from: seed URLs to crawl, img2dataset-style URL lists, web archives."""

    seeds_file: Optional[str] = None
    seed_urls: Sequence[str] = ()
    url_list: Optional[str] = None  # path or glob
    url_col: str = "url"
    caption_col: str = "caption"
    uid_col: str = "uid"  # a URL list's own sample id (DataComp's uid), carried into the shards
    warc: Optional[str] = None  # path or glob of WARC / WARC.gz / WAT files

    @property
    def crawls(self) -> bool:
        return bool(self.seeds_file or self.seed_urls)


@dataclass
class _Sources:
    """What the inputs give: pages (for the page funnel), pairs, unusable pairs, archived images."""

    pages: object
    page_failures: object
    extracted: object
    unusable: object
    archived_images: object = None  # ArchivedImage PCollection when a WARC is read
    values: tuple = ()  # (section, name, value) PCollections for stats.json


def _flatten(p: beam.Pipeline, pcolls: list, label: str):
    if not pcolls:
        return p | f"No{label}" >> beam.Create([])
    return tuple(pcolls) | f"All{label}" >> beam.Flatten()


def _read_inputs(p: beam.Pipeline, cfg: CurateConfig, inputs: Inputs, local_workers: Optional[int]) -> _Sources:
    """Pages (crawled, archived) through ExtractAltText, plus listed and WAT pairs, from every input."""
    pages, failures, sources, unusable, values, archived = [], [], [], [], [], None
    spec = extract_spec(cfg)
    if inputs.crawls:
        seeds, seed_failures = p | "ReadSeeds" >> ReadSeeds(inputs.seeds_file, inputs.seed_urls, with_failures=True)
        failures.append(seed_failures)
        page_client = client_settings(cfg)  # a worker fetches up to fetch.concurrency pages over many hosts
        crawled, crawl_failures = seeds | "FetchPages" >> FetchPages(crawl_spec(cfg, local_workers), page_client)
        pages.append(crawled)
        failures.append(crawl_failures)
    if inputs.warc:
        warc = p | "ReadWarc" >> ReadWarc(inputs.warc, warc_limits(cfg), spec)
        pages.append(warc["pages"])
        failures.append(warc["failures"])
        sources.append(warc["pairs"])
        unusable.append(warc["rejected"])
        values.append(warc["stats"])
        archived = warc["images"]
    all_pages = _flatten(p, pages, "Pages")
    if pages:
        extracted, bad = all_pages | "ExtractAltText" >> ExtractAltText(spec)
        sources.append(extracted)
        unusable.append(bad)
    if inputs.url_list:
        listed, bad = p | "ReadUrlList" >> ReadUrlList(inputs.url_list, inputs.url_col, inputs.caption_col,
                                                          max_url_chars=spec.max_url_chars, uid_col=inputs.uid_col)
        sources.append(listed)
        unusable.append(bad)
    return _Sources(all_pages, _flatten(p, failures, "PageFailures"), _flatten(p, sources, "Pairs"),
                    _flatten(p, unusable, "Unusable"), archived, tuple(values))


def _apply_blocklists(extracted, cfg: CurateConfig, rejected: dict):
    """ApplyBlocklists (domains, URL prefixes, URLs) before anything is downloaded."""
    lists = blocklist_spec(cfg)
    if not lists.before_download:
        return extracted
    pairs, rejected["ApplyBlocklists"] = extracted | "ApplyBlocklists" >> ApplyBlocklists(lists)
    return pairs


def _caption_stages(extracted, cfg: CurateConfig, rejected: dict):
    """CaptionRules, [LicenseRules (license.allow)], then DropBoilerplate (it needs a count over
    all pairs of a site)."""
    pairs, rejected["CaptionRules"] = extracted | "CaptionRules" >> ApplyRules(caption_rules(caption_spec(cfg)))
    if cfg.license.allow:
        pairs, rejected["LicenseRules"] = pairs | "LicenseRules" >> ApplyRules(license_rules(license_allow(cfg)))
    max_images = boilerplate_max_images(cfg)
    if max_images:
        pairs, rejected["DropBoilerplate"] = pairs | "DropBoilerplate" >> DropBoilerplate(max_images)
    return pairs


def fetch_stage(cfg: CurateConfig, output_dir: str, resume: bool = False,
                local_workers: Optional[int] = None) -> beam.PTransform:
    """FetchImages; with output.checkpoint its outcomes are saved under OUT/_work/fetched as they
    come, and ``resume`` reuses them (transforms/checkpoint.py)."""
    fetch = FetchImages(client_settings(cfg), fetch_spec(cfg, local_workers), resize=resize_spec(cfg),
                        spill_dir=spill_dir(cfg, output_dir))
    if not cfg.output.checkpoint:
        return fetch
    return Checkpointed(fetch, work_dir(output_dir, "fetched"), resume, cfg.output.checkpoint_every)


def spill_dir(cfg: CurateConfig, output_dir: str) -> Optional[str]:
    """OUT/_work/images, where resized bytes wait for ScoreClip and WriteShards; None = carried inline."""
    return work_dir(output_dir, IMAGES) if cfg.output.spill_images else None


def score_stage(cfg: CurateConfig, score_handler=None) -> beam.PTransform:
    """ScoreClip, with score.accelerator as a Beam resource hint (GPU workers for this step only)."""
    score = ScoreClip(scorer_spec(cfg), score_handler)
    return score.with_resource_hints(accelerator=cfg.score.accelerator) if cfg.score.accelerator else score


def _fetch_images(pairs, archived, cfg: CurateConfig, rejected: dict, values: list, fetch: beam.PTransform,
                  spilled: Optional[str]):
    """FetchImages (download + resize); pairs whose image a WARC holds skip the download
    and go straight to ResizeImages, or are rejected with the capture's ``fetch.*``
    reason (noai, truncated, ...: never fetched live). Rejections keep their two funnel
    rows. With ``spilled`` (a directory) the image bytes go to blob files there."""
    from_archive = refused = None
    if archived is not None:
        routed = (pairs, archived) | "UseArchivedImages" >> UseArchivedImages()
        pairs, from_archive, refused = routed["download"], routed["archived"], routed["rejected"]
        values.append(routed["stats"])
    # Download and resize run in the same worker threads (transforms/fetch.py);
    # the funnel still shows them as two stages, split by reason.
    images, fetch_rejects = pairs | "FetchImages" >> fetch
    rejected["FetchImages"], resize_rejects = fetch_rejects | "SplitFetchResize" >> beam.Partition(
        lambda rej, _n: int(rej.reason.startswith("image.")), 2)
    if from_archive is not None:
        rejected["FetchImages"] = (rejected["FetchImages"], refused) | "AllFetchRejects" >> beam.Flatten()
        unarchived, archive_rejects = from_archive | "ResizeArchivedImages" >> ResizeImages(resize_spec(cfg))
        if spilled:
            unarchived = unarchived | "SpillArchivedImages" >> SpillImages(spilled)
        images = (images, unarchived) | "AllImages" >> beam.Flatten()
        resize_rejects = (resize_rejects, archive_rejects) | "AllResizeRejects" >> beam.Flatten()
    rejected["ResizeImages"] = resize_rejects
    if spilled and not cfg.dedupe.image_exact:
        # A blob file is whole once its bundle ends: readers (ScoreClip) sit behind a shuffle.
        images = images | "ImagesWritten" >> beam.Reshuffle()
    return images


def _dedupe_images(images, cfg: CurateConfig, rejected: dict, policy: SurvivorPolicy):
    """HashImages, exact and (unless it needs scores) near-duplicate dedupe."""
    images = images | "HashImages" >> HashImages(resize_spec(cfg))
    lists = blocklist_spec(cfg)
    if lists.before_download or lists.after_download:  # hashes, and URL lists again after redirects
        images, rejected["BlockImageHashes"] = images | "BlockImageHashes" >> BlockImageHashes(lists)
    if cfg.dedupe.image_exact:
        images, rejected["DedupeImages"] = images | "DedupeImages" >> DedupeImages()
    if cfg.dedupe.near and not policy.needs_scores:
        images, rejected["DedupeNear"] = images | "DedupeNear" >> _dedupe_near(cfg, policy)
    return images


def _dedupe_near(cfg: CurateConfig, policy: SurvivorPolicy) -> DedupeNear:
    """DedupeNear from near_dedupe_spec (LSH, components rounds, caption veto) and the survivor policy."""
    near = near_dedupe_spec(cfg)
    return DedupeNear(near.lsh, policy, cc_rounds=near.cc_rounds, caption_veto=near.caption_veto)


def _tag_safety(scored, cfg: CurateConfig, rejected: dict):
    """TagSafety from the stored image embeddings (prompts encoded once) [-> SafetyFilter]."""
    tagger = scored.pipeline | "MakeTagger" >> MakeTagger(safety_spec(cfg), scorer_spec(cfg))
    scored = scored | "TagSafety" >> TagSafety(tagger)
    if cfg.safety.filter:
        scored, rejected["SafetyFilter"] = scored | "SafetyFilter" >> ApplyRules(safety_rules(safety_thresholds(cfg)))
    return scored


def threshold_and_dedupe(scored, cfg: CurateConfig, rejected: dict, policy: SurvivorPolicy,
                         near_after_scoring: bool):
    """[DedupeNear] -> ClipThreshold -> [SemanticDedupe] on scored images: (kept, threshold used)."""
    if near_after_scoring:
        scored, rejected["DedupeNear"] = scored | "DedupeNear" >> _dedupe_near(cfg, policy)
    if cfg.safety.enabled:
        scored = _tag_safety(scored, cfg, rejected)
    scores = scored | "ThresholdScores" >> beam.FlatMap(lambda s: [s.clip_score] if s.clip_score is not None else [])
    threshold = scores | "ClipThresholdValue" >> ComputeClipThreshold(threshold_spec(cfg))
    kept, rejected["ClipThreshold"] = scored | "ClipThreshold" >> ClipThreshold(threshold)
    if cfg.dedupe.semantic:
        kept, rejected["SemanticDedupe"] = kept | "SemanticDedupe" >> SemanticDedupe(semantic_spec(cfg), policy)
    return kept, threshold


def build_pipeline(p: beam.Pipeline, cfg: CurateConfig, inputs: Inputs, output_dir: str,
                   score_handler=None, resume: bool = False, local_workers: Optional[int] = None) -> None:
    """Add the curation graph to ``p``. ``score_handler`` replaces the open_clip one (tests);
    ``resume`` reuses the fetch outcomes a killed run saved in ``output_dir``; ``local_workers``:
    a local run's worker count, the keys per hot host when ``fetch.max_keys_per_host`` is 0."""
    rejected = {}
    src = _read_inputs(p, cfg, inputs, local_workers)
    rejected["ExtractAltText"], values = src.unusable, list(src.values)
    pairs = _apply_blocklists(src.extracted, cfg, rejected)
    pairs = _caption_stages(pairs, cfg, rejected)
    if cfg.dedupe.url:
        pairs, rejected["DedupeUrls"] = pairs | "DedupeUrls" >> DedupeUrls()
    elif cfg.dedupe.url_caption:
        pairs, rejected["DedupeUrlCaptions"] = pairs | "DedupeUrlCaptions" >> DedupeUrlCaptions()
    if cfg.balance.enabled and cfg.balance.before_fetch:  # MetaCLIP balancing over unique pairs, before downloads
        pairs, rejected["BalanceByMetadata"], balanced = pairs | "BalanceByMetadata" >> BalanceByMetadata(
            balance_spec(cfg))
        values.append(balanced)
    fetch = fetch_stage(cfg, output_dir, resume, local_workers)
    images = _fetch_images(pairs, src.archived_images, cfg, rejected, values, fetch, spill_dir(cfg, output_dir))
    fetched = images  # every downloaded image: the thumbnails of later drops (write_outputs)
    images, rejected["ImageRules"] = images | "ImageRules" >> ApplyRules(  # + a short caption needs a picture
        image_rules(image_spec(cfg)) + short_caption_rules(caption_spec(cfg)))
    policy = survivor_policy(cfg)
    images = _dedupe_images(images, cfg, rejected, policy)
    if cfg.balance.enabled and not cfg.balance.before_fetch:  # over the unique images that downloaded, unscored
        balance = BalanceByMetadata(balance_spec(cfg))
        images, rejected["BalanceImagesByMetadata"], balanced = images | "BalanceImagesByMetadata" >> balance
        values.append(balanced)
    threshold = None
    if cfg.score.enabled:
        scored = images | "ScoreClip" >> score_stage(cfg, score_handler)
        kept, threshold = threshold_and_dedupe(scored, cfg, rejected, policy,
                                               cfg.dedupe.near and policy.needs_scores)
        if cfg.score.embeddings:  # every scored sample, with whether it is kept
            ({"scored": scored, "kept": kept}
             | "WriteEmbeddings" >> WriteEmbeddings(output_dir, samples_per_shard(cfg)))
    else:
        kept = images | "SkipScoring" >> SkipScoring()
    events = [
        to_events(src.pages, "PageOkEvents", lambda _: ("page_ok",)),
        to_events(src.page_failures, "PageFailEvents", lambda f: ("page_fail", f.reason.value)),
        # pairs_extracted counts what extraction emitted (both outputs), independently of the sinks.
        to_events(src.extracted, "PairEvents", lambda _: ("pairs",)),
        to_events(rejected["ExtractAltText"], "UnusablePairEvents", lambda _: ("pairs",)),
    ]
    extra = stats_extra(cfg, rejected)
    extra["blocklist"] = blocklist_stats(blocklist_spec(cfg))  # reads the lists: a bad one fails now
    if cfg.safety.enabled:
        extra["safety"] = safety_stats(safety_spec(cfg), cfg.safety.filter)
    write_outputs(kept, rejected, events, output_dir, cfg, extra, threshold, values,
                  page_failures=src.page_failures, images=fetched)
