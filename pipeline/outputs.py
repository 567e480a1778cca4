"""The sinks every curation graph ends in: shards, rejections, stats (shared by build.py and build_refilter.py).

Input: the kept samples, the rejections by funnel stage label, event PCollections (tuples WriteStats
counts: ``("kept",)``, ``("drop", stage, reason)``, ``("pairs",)``, ...), the config and the stats.json
fields known before the run. Output: OUT/shards, OUT/rejections, OUT/stats.json (the output contract,
pipeline/shard_format.py). Nothing is dropped here: every rejection passed in is written.

``STAGES`` is the funnel's order: Beam step names of the stages that can drop (shown on Dataflow)
and stats.json's funnel rows.
"""

from __future__ import annotations

import apache_beam as beam

from filters.license_rules import CountLicenses
from pipeline.config import CurateConfig
from transforms.opt_out import SummariseOptOut
from pipeline.specs import thumbnail_spec
from transforms.reject_thumbnails import thumbnail_sources
from transforms.write_shards import WriteRejections, WriteShards
from transforms.write_stats import SampleFailedPages, SampleInternalErrors, WriteStats

# Stage labels in flow order: Beam step names (shown on Dataflow) and funnel rows.
STAGES = ("ExtractAltText", "ApplyBlocklists", "CaptionRules", "LicenseRules", "DropBoilerplate", "DedupeUrlCaptions", "DedupeUrls", "BalanceByMetadata", "FetchImages", "ResizeImages",
          "ImageRules", "BlockImageHashes", "DedupeImages", "DedupeNear", "BalanceImagesByMetadata", "SafetyFilter", "ClipThreshold", "SemanticDedupe")


def to_events(pcoll, label: str, make):
    """``make(record)`` of every record: the event tuples WriteStats counts (kept, drop, pairs, ...)."""
    return pcoll | label >> beam.Map(make)


def stats_extra(cfg: CurateConfig, stages) -> dict:
    """stats.json fields known before the run (the CLIP threshold may be replaced by the one used)."""
    d = cfg.dedupe
    return {
        "stages": [s for s in STAGES if s in stages],
        "thresholds": {"clip_min_score": cfg.score.min_score if cfg.score.enabled else None,
                       "clip_keep_fraction": cfg.score.keep_fraction or None,
                       "caption_min_words": cfg.caption.min_words,
                       "caption_min_chars": cfg.caption.min_chars,
                       "caption_boilerplate_max_images": cfg.caption.boilerplate_max_images or None,
                       "caption_languages": list(cfg.caption.languages) or None,
                       "caption_language_min_confidence": (cfg.caption.language_min_confidence
                                                           if cfg.caption.languages else None),
                       "image_min_side": cfg.image.min_side,
                       "image_max_aspect": cfg.image.max_aspect,
                       "near_hamming": d.near_threshold if d.near else None,
                       "near_colour_delta": d.near_colour_delta if d.near else None,
                       "semantic_min_cosine": round(1.0 - d.semantic_eps, 6) if d.semantic else None},
        "dedupe": {"near_policy": d.near_policy if (d.near or d.semantic) else None},
        "license": {"allow": list(cfg.license.allow) or None},  # "kept", the mix, comes from CountLicenses
        "scorer": f"{cfg.score.model}/{cfg.score.pretrained}" if cfg.score.enabled else None,
        "config_hash": cfg.config_hash(),
    }


def write_outputs(kept, rejected: dict, events: list, output_dir: str, cfg: CurateConfig,
                  extra: dict, threshold=None, values=(), carried=None, page_failures=None,
                  images=None) -> None:
    """WriteShards, WriteRejections and WriteStats (with the threshold used, when one was computed).

    ``values``: PCollections of (section, name, value) for stats.json. ``carried``:
    ``(rejections, {reason: stage label})`` made by an earlier run (``wit refilter``).
    ``images``: every downloaded image, for the thumbnails of later drops (output.reject_thumbnails).
    """
    kept | "WriteShards" >> WriteShards(output_dir, cfg.output.samples_per_shard)
    sources = thumbnail_sources(rejected, images, thumbnail_spec(cfg))
    events = list(events) + [to_events(kept, "KeptEvents", lambda _: ("kept",))]
    for stage, rej in rejected.items():
        events.append(to_events(rej, f"DropEvents{stage}", lambda r, s=stage: ("drop", s, r.reason)))
    if carried is not None:
        old, labels = carried
        sources.append(old)
        events.append(to_events(old, "CarriedDropEvents", lambda r: ("drop", labels.get(r.reason, r.stage), r.reason)))
    all_rejected = tuple(sources) | "AllRejections" >> beam.Flatten()
    all_rejected | "WriteRejections" >> WriteRejections(output_dir, cfg.output.rejections_per_file)
    values = list(values) + [all_rejected | "OptOutSummary" >> SummariseOptOut(),
                             kept | "LicenseMix" >> CountLicenses()]
    # stats.json internal_errors samples: the pairs and pages that met a bug (pipeline/faults.py)
    failed = (all_rejected,) if page_failures is None else (all_rejected, page_failures)
    values.append(failed | "AllFailed" >> beam.Flatten() | "InternalErrorSamples" >> SampleInternalErrors())
    if page_failures is not None:  # stats.json pages.failed_samples: which pages failed, and why
        values.append(page_failures | "FailedPageSamples" >> SampleFailedPages())
    if threshold is not None:
        values.append(threshold | "ThresholdUsed" >> beam.Map(lambda t: ("thresholds", "clip_min_score", t)))
    stats_values = tuple(values) | "AllStatsValues" >> beam.Flatten() if values else None
    (tuple(events) | "AllEvents" >> beam.Flatten()
     | "WriteStats" >> WriteStats(output_dir, extra["stages"], extra, stats_values))
