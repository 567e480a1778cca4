"""The ``wit refilter`` graph: the threshold and dedupe stages of pipeline/build.py over a finished output.

Input: a ``RefilterPlan`` (source directory and its stats.json) and a ``CurateConfig``.
Output: a complete new output (shards, rejections, embeddings, stats). Drops:
``dedupe.image_near``, ``clip.below_threshold``, ``dedupe.semantic`` as in a curate run;
every rejection of the source is carried with its stage label.

Keys at 100M pairs: ``JoinEmbeddings`` and ``JoinDroppedScores`` are CoGroupByKeys on the sample
key (one sample and one embedding or score per key); ``CountUnrestorable`` is a
``Count.Globally`` (lifted) and the requested threshold a one-float side input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import apache_beam as beam

from filters.clip_threshold import ClipThreshold, ComputeClipThreshold
from pipeline.config import CurateConfig
from pipeline.outputs import stats_extra, to_events, write_outputs
from pipeline.specs import near_dedupe_spec, resize_spec, semantic_spec, survivor_policy, threshold_spec
from transforms.dedupe import DedupeNear
from transforms.hashing import HashImages
from transforms.semantic_dedupe import SemanticDedupe


@dataclass(frozen=True)
class RefilterPlan:
    """What ``wit refilter`` re-applies to ``source_dir`` (pipeline/refilter.py builds it)."""

    source_dir: str
    source_stats: dict
    threshold: bool = True  # ClipThreshold with cfg.score (min_score or keep_fraction)
    near: bool = False  # DedupeNear over the kept samples with cfg.dedupe
    semantic: bool = False  # SemanticDedupe over the kept samples (embeddings from the source)


def _reason_labels(stats: dict) -> dict:
    """{reason: funnel stage label} of a stats.json."""
    return {reason: row["stage"] for row in stats.get("funnel", []) for reason in row["dropped"]}


def _with_embeddings(samples, embeddings):
    """Kept samples with their image embedding from the source's embeddings/ (for SemanticDedupe)."""
    from dataclasses import replace

    def attach(key_and_joined):
        _key, joined = key_and_joined
        vectors = [e for _, e in joined["embedding"]]
        for sample in joined["sample"]:
            yield replace(sample, image_embedding=vectors[0]) if vectors else sample

    keyed = samples | "KeySamples" >> beam.Map(lambda s: (s.image.pair.key, s))
    vectors = embeddings | "KeyEmbeddings" >> beam.Map(lambda e: (e[0], (e[1], e[2])))
    return {"sample": keyed, "embedding": vectors} | "JoinEmbeddings" >> beam.CoGroupByKey() | "Attach" >> beam.FlatMap(
        attach)


def _pool_scores(samples, old_rejections, embeddings):
    """(scores that entered ClipThreshold in the source run, scores of those it dropped)."""
    dropped = (old_rejections | "ThresholdedRejections" >> beam.Filter(
        lambda r: r.reason in ("clip.below_threshold", "dedupe.semantic")) | "KeyDropped" >> beam.Map(
        lambda r: (r.key, r.reason)))
    scores = embeddings | "KeyScores" >> beam.Map(lambda e: (e[0], e[1]))
    joined = {"reason": dropped, "score": scores} | "JoinDroppedScores" >> beam.CoGroupByKey()
    below = joined | "BelowScores" >> beam.FlatMap(
        lambda kv: [s for s in kv[1]["score"] if s is not None] if "clip.below_threshold" in kv[1]["reason"] else [])
    passed = joined | "SemanticScores" >> beam.FlatMap(
        lambda kv: [s for s in kv[1]["score"] if s is not None] if "dedupe.semantic" in kv[1]["reason"] else [])
    kept = samples | "KeptScores" >> beam.FlatMap(lambda s: [s.clip_score] if s.clip_score is not None else [])
    return (kept, below, passed) | "PoolScores" >> beam.Flatten(), below


def _refilter_threshold(samples, old_rejections, embeddings, cfg: CurateConfig, source_min: Optional[float]):
    """The threshold to apply (never below the source's: its drops have no image to restore) + stats values."""
    pool, below = _pool_scores(samples, old_rejections, embeddings)
    requested = pool | "RequestedThreshold" >> ComputeClipThreshold(threshold_spec(cfg))
    effective = requested | "EffectiveThreshold" >> beam.Map(
        lambda t, floor: t if floor is None or (t is not None and t >= floor) else floor, source_min)
    lost = (below | "Restorable" >> beam.Filter(lambda s, t: t is not None and s >= t, beam.pvalue.AsSingleton(requested))
            | "CountUnrestorable" >> beam.combiners.Count.Globally())
    values = [requested | "RequestedValue" >> beam.Map(lambda t: ("refilter", "requested_clip_min_score", t)),
              lost | "UnrestorableValue" >> beam.Map(lambda n: ("refilter", "unrestorable", n))]
    return effective, values


def build_refilter(p: beam.Pipeline, cfg: CurateConfig, plan: RefilterPlan, output_dir: str) -> None:
    """Re-apply DedupeNear / ClipThreshold / SemanticDedupe to a finished output, writing a complete new one.

    Every sample and rejection of the source is carried: kept samples go through the
    stages again, the source's rejections are written again with their stage labels.
    """
    from transforms.read_curated import ReadCuratedEmbeddings, ReadCuratedRejections, ReadCuratedSamples

    samples = p | "ReadSamples" >> ReadCuratedSamples(plan.source_dir)
    old_rejections = p | "ReadSourceRejections" >> ReadCuratedRejections(plan.source_dir)
    embeddings = p | "ReadSourceEmbeddings" >> ReadCuratedEmbeddings(plan.source_dir)
    policy = survivor_policy(cfg)
    rejected, values, threshold = {}, [], None
    kept = samples
    if plan.near:
        kept = kept | "HashImages" >> HashImages(resize_spec(cfg))
        near = near_dedupe_spec(cfg)
        kept, rejected["DedupeNear"] = kept | "DedupeNear" >> DedupeNear(
            near.lsh, policy, cc_rounds=near.cc_rounds, caption_veto=near.caption_veto)
    if plan.threshold:
        source_min = plan.source_stats.get("thresholds", {}).get("clip_min_score")
        threshold, values = _refilter_threshold(samples, old_rejections, embeddings, cfg, source_min)
        kept, rejected["ClipThreshold"] = kept | "ClipThreshold" >> ClipThreshold(threshold)
    if plan.semantic:
        kept = _with_embeddings(kept, embeddings)
        kept, rejected["SemanticDedupe"] = kept | "SemanticDedupe" >> SemanticDedupe(semantic_spec(cfg), policy)
    events = [to_events(samples, "SourceKeptPairs", lambda _: ("pairs",)),
              to_events(old_rejections, "SourceRejectedPairs", lambda _: ("pairs",))]
    extra = stats_extra(cfg, set(plan.source_stats.get("stages", [])) | set(rejected))
    extra["pages"] = plan.source_stats.get("pages", {})
    for section in ("blocklist", "safety"):  # what the source run applied; its drops are carried
        if section in plan.source_stats:
            extra[section] = plan.source_stats[section]
    extra["refilter"] = {"source": plan.source_dir, "source_kept": plan.source_stats.get("kept"),
                         "source_pairs_extracted": plan.source_stats.get("pairs_extracted")}
    write_outputs(kept, rejected, events, output_dir, cfg, extra, threshold, values,
                  carried=(old_rejections, _reason_labels(plan.source_stats)))
