"""``wit refilter``: re-apply CLIP thresholds and dedupe to a finished output, without re-scoring.

Input: a ``wit curate`` output (shards, rejections, embeddings, stats.json,
run_config.yaml) and what to change: ``--min-score`` or ``--keep-fraction``, and
optionally near-duplicate (``--near-threshold``, ``--near-policy``) or semantic
(``--semantic-eps``) dedupe. Output: a complete new output directory: shards,
sizes.json, rejections (the source's, plus the new drops), embeddings (copied:
they describe everything that was scored), stats.json (with a ``refilter``
section) and run_config.yaml. Drop reasons: those of the stages re-applied
(``clip.below_threshold``, ``dedupe.image_near``, ``dedupe.semantic``).

Refilter only removes: the source kept the images of its kept samples only, so a
threshold below the source's (or a ``keep_fraction`` that gives one) is applied as
the source's threshold, and stats.json counts the samples it would have brought
back (``refilter.unrestorable``). With the source's own threshold the new output is
the source, byte for byte (shards, sizes.json, rejections, embeddings).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Optional, Sequence

import apache_beam as beam
import yaml
from apache_beam.io.filesystems import FileSystems

from pipeline import shard_format
from pipeline.build_refilter import RefilterPlan, build_refilter
from pipeline.config import ConfigError, CurateConfig, dump_yaml, from_dict, with_overrides
from pipeline.malloc_tuning import malloc_tuned
from pipeline.run import OutputExists, prepare_output, read_stats
from pipeline.runners import make_options, make_runner
from transforms.embeddings import EMBEDDINGS_DIR
from transforms.read_curated import list_files
from transforms.output_files import write_atomically

log = logging.getLogger(__name__)


class RefilterError(ConfigError):
    """The source is not a usable output, or the request does not fit it."""


@dataclass(frozen=True)
class RefilterRequest:
    min_score: Optional[float] = None
    keep_fraction: Optional[float] = None
    near_threshold: Optional[int] = None
    near_policy: Optional[str] = None
    semantic_eps: Optional[float] = None


def load_source(source_dir: str) -> tuple[CurateConfig, dict]:
    """The source's resolved config and stats; RefilterError when they are missing."""
    try:
        with FileSystems.open(FileSystems.join(source_dir, shard_format.RUN_CONFIG_FILE)) as fh:
            raw = yaml.safe_load(fh.read().decode("utf-8")) or {}
        stats = read_stats(source_dir)
    except (OSError, ValueError) as exc:  # Beam's IOError, yaml/json errors
        raise RefilterError(f"{source_dir} is not a finished wit curate output: {exc}") from None
    return from_dict(raw), stats


def refilter_config(cfg: CurateConfig, request: RefilterRequest) -> CurateConfig:
    """The source config with the requested thresholds (validated like YAML input)."""
    score, dedupe = {}, {}
    if request.min_score is not None and request.keep_fraction is not None:
        raise RefilterError("give --min-score or --keep-fraction, not both")
    if request.min_score is not None:
        score.update(min_score=request.min_score, keep_fraction=0.0)
    if request.keep_fraction is not None:
        if not 0.0 < request.keep_fraction <= 1.0:
            raise RefilterError("--keep-fraction must be in (0, 1]")
        score.update(keep_fraction=request.keep_fraction)
    if request.near_threshold is not None or request.near_policy is not None:
        dedupe.update(near=True)
        if request.near_threshold is not None:
            dedupe.update(near_threshold=request.near_threshold)
        if request.near_policy is not None:
            dedupe.update(near_policy=request.near_policy)
    if request.semantic_eps is not None:
        dedupe.update(semantic=True, semantic_eps=request.semantic_eps)
    return with_overrides(cfg, score=score, dedupe=dedupe)


def make_plan(source_dir: str, cfg: CurateConfig, stats: dict, request: RefilterRequest) -> RefilterPlan:
    scored = bool(stats.get("scorer"))
    if not scored and (request.min_score is not None or request.keep_fraction is not None
                       or request.semantic_eps is not None):
        raise RefilterError(f"{source_dir} was curated without scoring: no scores to threshold")
    if request.semantic_eps is not None and not list_files(FileSystems.join(source_dir, EMBEDDINGS_DIR), "*.parquet"):
        raise RefilterError(f"{source_dir} has no embeddings/ (score.embeddings was false): no semantic dedupe")
    near = request.near_threshold is not None or request.near_policy is not None
    return RefilterPlan(source_dir, stats, threshold=scored, near=near, semantic=request.semantic_eps is not None)


def copy_embeddings(source_dir: str, output_dir: str) -> int:
    """The source's embeddings files, copied as they are."""
    files = list_files(FileSystems.join(source_dir, EMBEDDINGS_DIR), "*.parquet")
    target = FileSystems.join(output_dir, EMBEDDINGS_DIR)
    for path in files:
        with FileSystems.open(path) as fh:
            write_atomically(FileSystems.join(target, path.rsplit("/", 1)[-1]), fh.read())
    return len(files)


def run_refilter(source_dir: str, output_dir: str, request: RefilterRequest, beam_args: Sequence[str] = (),
                 overwrite: bool = False) -> dict:
    """Validate, run the refilter pipeline, return the new stats.json."""
    if source_dir.rstrip("/") == output_dir.rstrip("/"):
        raise RefilterError("--output must differ from the source directory")
    source_cfg, stats = load_source(source_dir)
    cfg = refilter_config(source_cfg, request)
    plan = make_plan(source_dir, cfg, stats, request)
    prepare_output(output_dir, overwrite)
    if FileSystems.exists(FileSystems.join(output_dir, EMBEDDINGS_DIR)):
        if not overwrite:
            raise OutputExists(f"{output_dir} already holds embeddings/; pass --overwrite")
        FileSystems.delete([FileSystems.join(output_dir, EMBEDDINGS_DIR)])
    write_atomically(FileSystems.join(output_dir, shard_format.RUN_CONFIG_FILE), dump_yaml(cfg).encode("utf-8"))
    copied = copy_embeddings(source_dir, output_dir)
    options = make_options(beam_args)
    start = time.monotonic()
    runner = make_runner(options)
    with malloc_tuned(enabled=runner is not None), beam.Pipeline(runner=runner, options=options) as p:
        build_refilter(p, cfg, plan, output_dir)
    new_stats = read_stats(output_dir)
    log.info("refilter finished in %.1fs (%d embeddings files copied): kept %d of %d",
             time.monotonic() - start, copied, new_stats["kept"], stats["kept"])
    if new_stats.get("refilter", {}).get("unrestorable"):
        log.warning("%d samples the source dropped below its threshold would pass the requested one; they "
                    "cannot be restored (no image kept): the source's threshold %s applies. Re-run wit curate.",
                    new_stats["refilter"]["unrestorable"], stats.get("thresholds", {}).get("clip_min_score"))
    return new_stats


def stats_without_provenance(stats: dict) -> str:
    """stats.json minus its ``refilter`` section, as canonical JSON (refilter round-trip checks)."""
    return json.dumps({k: v for k, v in stats.items() if k != "refilter"}, sort_keys=True)
