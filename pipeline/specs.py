"""The config -> spec boundary: the only place a config section becomes a stage's spec.

Input: a validated ``CurateConfig`` (pipeline/config.py). Output: the small frozen spec
dataclasses the stages and filters take. Specs carry no defaults of their own: the config
dataclasses and ``configs/base.yaml`` are the only defaults (tests/pipeline/test_specs.py
fails on a duplicated one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from filters.blocklist_lists import BlocklistSpec
from filters.caption_rules import CaptionSpec
from filters.clip_threshold import ThresholdSpec
from filters.dedupe_policy import SurvivorPolicy, captions_tell_apart
from filters.image_rules import ImageRulesSpec
from pipeline.config import CurateConfig
from transforms.balance import BalanceSpec, build_spec
from transforms.clip_model import ScorerSpec
from transforms.crawl_frontier import CrawlSpec
from transforms.extract_alt_text import ExtractSpec
from transforms.fetch import FetchSpec
from transforms.http_client import ClientSettings
from transforms.imaging import ResizeSpec
from transforms.lsh import LshSpec
from transforms.page_opt_out import user_agent_token
from transforms.reject_thumbnails import JPEG_QUALITY, ThumbnailSpec
from transforms.robots import product_token
from transforms.safety_tags import SafetyInputError, SafetySpec, project_path, tag_thresholds
from transforms.semantic_dedupe import KMEANS_ITERATIONS, KMEANS_SEED, SemanticSpec
from transforms.warc_records import WarcLimits

# --- caption (filters/caption_rules.py, filters/short_caption.py) ---


def caption_spec(cfg: CurateConfig) -> CaptionSpec:
    """CaptionSpec from ``caption``: CaptionRules before the fetch, ShortCaptionRule after it."""
    c = cfg.caption
    return CaptionSpec(min_words=c.min_words, min_chars=c.min_chars, max_words=c.max_words, max_chars=c.max_chars,
                       placeholders=tuple(c.placeholders), navigation=tuple(c.navigation), badges=tuple(c.badges),
                       ui_suffixes=tuple(c.ui_suffixes), repeat_min_words=c.repeat_min_words, languages=tuple(c.languages),
                       language_min_words=c.language_min_words,
                       language_min_confidence=c.language_min_confidence,
                       short_min_side=c.short_min_side, short_min_bpp=c.short_min_bpp)


def boilerplate_max_images(cfg: CurateConfig) -> int:
    """DropBoilerplate's input, ``caption.boilerplate_max_images`` (0: the stage is not wired)."""
    return cfg.caption.boilerplate_max_images


# ---------------------------------------------------------------------------------------------
# Every adapter below takes the whole CurateConfig and reads only its own sections; the spec it
# returns holds plain values (pickled into DoFns). A new knob: a config field + base.yaml line,
# a spec field (no default), one line here. Nothing else carries the default.
# ---------------------------------------------------------------------------------------------


# --- fetch (transforms/http_client.py, transforms/fetch.py) ---
def client_settings(cfg: CurateConfig, pool_size: Optional[int] = None) -> ClientSettings:
    """ClientSettings from ``fetch``; ``pool_size`` (connections) defaults to ``fetch.concurrency``."""
    f = cfg.fetch
    return ClientSettings(
        connect_timeout_s=f.connect_timeout_s,
        read_timeout_s=f.read_timeout_s,
        total_timeout_s=f.total_timeout_s,
        max_bytes=f.max_bytes,
        max_redirects=f.max_redirects,
        retries=f.retries,
        user_agent=f.user_agent,
        respect_robots=f.respect_robots,
        respect_noai=f.respect_noai,
        allow_private_networks=f.allow_private_networks,
        guard_exempt=tuple(f.private_network_allowlist),
        min_interval_s=f.per_host_min_interval_s,
        pool_size=pool_size or f.concurrency,
        max_host_delay_s=f.max_host_delay_s,
        respect_tdmrep=f.respect_tdmrep,
        robots_cache_s=f.robots_cache_s,
        refuse_types=(),  # not a knob: FetchImages refuses SVG by its headers when resize.svg is off
    )


def _max_keys(cfg: CurateConfig, per_host: int, local_workers: Optional[int]) -> int:
    """``fetch.max_keys_per_host``; at 0, the local run's worker count (pipeline/runners.local_workers,
    passed by pipeline/run.py), or ``per_host`` on any other runner. Not written back into the config:
    the outputs, and so the config hash, do not depend on it."""
    return cfg.fetch.max_keys_per_host or local_workers or per_host


def fetch_spec(cfg: CurateConfig, local_workers: Optional[int] = None) -> FetchSpec:
    """FetchSpec from ``fetch.concurrency``, ``fetch.per_host_concurrency``, ``fetch.urls_per_key``,
    ``fetch.max_keys_per_host`` (0: ``local_workers``, see ``_max_keys``) and ``resize.processes``."""
    return FetchSpec(concurrency=cfg.fetch.concurrency, per_host=cfg.fetch.per_host_concurrency,
                     processes=cfg.resize.processes, urls_per_key=cfg.fetch.urls_per_key,
                     max_keys=_max_keys(cfg, cfg.fetch.per_host_concurrency, local_workers))


# --- crawl (transforms/crawl_frontier.py) ---
def crawl_spec(cfg: CurateConfig, local_workers: Optional[int] = None) -> CrawlSpec:
    """CrawlSpec from ``crawl`` and the worker-wide ``fetch.concurrency`` / ``fetch.urls_per_key``."""
    c = cfg.crawl
    return CrawlSpec(max_depth=c.max_depth, max_pages=c.max_pages, same_host=c.same_host,
                     concurrency=c.concurrency, max_page_bytes=c.max_page_bytes, canonical=c.canonical,
                     duplicate_content=c.duplicate_content, worker_concurrency=cfg.fetch.concurrency,
                     urls_per_key=cfg.fetch.urls_per_key, max_keys=_max_keys(cfg, c.concurrency, local_workers))


# --- extract (transforms/extract_alt_text.py) ---
def extract_spec(cfg: CurateConfig) -> ExtractSpec:
    """ExtractSpec from ``extract``, ``resize.image_size`` (the srcset candidate is chosen for it)
    and, for the page opt-outs, ``fetch.user_agent``'s product token and ``fetch.respect_tdmrep``."""
    e = cfg.extract
    return ExtractSpec(target_size=cfg.resize.image_size, tracker_max_side=e.tracker_max_side,
                       tracker_patterns=tuple(p.lower() for p in e.tracker_patterns),
                       bot_token=user_agent_token(cfg.fetch.user_agent), respect_tdmrep=cfg.fetch.respect_tdmrep,
                       max_url_chars=e.max_url_chars)


# --- warc (transforms/warc.py) ---
def warc_limits(cfg: CurateConfig) -> WarcLimits:
    """WarcLimits from ``crawl.max_page_bytes`` and ``fetch``: image bytes, noai, our product token."""
    return WarcLimits(max_page_bytes=cfg.crawl.max_page_bytes, max_image_bytes=cfg.fetch.max_bytes,
                      respect_noai=cfg.fetch.respect_noai, agent=product_token(cfg.fetch.user_agent))


# --- resize (transforms/imaging.py) ---
def resize_spec(cfg: CurateConfig) -> ResizeSpec:
    """ResizeSpec from ``resize``."""
    r = cfg.resize
    return ResizeSpec(image_size=r.image_size, mode=r.mode, resize_only_if_bigger=r.resize_only_if_bigger,
                      encode_format=r.encode_format, encode_quality=r.encode_quality, max_pixels=r.max_pixels,
                      resample=r.resample, svg=r.svg)


# --- image (filters/image_rules.py) ---
def image_spec(cfg: CurateConfig) -> ImageRulesSpec:
    """ImageRulesSpec from ``image``."""
    return ImageRulesSpec(min_side=cfg.image.min_side, max_aspect=cfg.image.max_aspect)


# --- license (filters/license_rules.py) ---
def license_allow(cfg: CurateConfig) -> tuple:
    """LicenseRules' input: the licence ids ``license.allow`` keeps (empty: the stage is not wired)."""
    return tuple(cfg.license.allow)


# --- blocklist (filters/blocklist_lists.py) ---
def blocklist_spec(cfg: CurateConfig) -> BlocklistSpec:
    """BlocklistSpec from ``blocklist``."""
    b = cfg.blocklist
    return BlocklistSpec(domains=tuple(b.domains), url_prefixes=tuple(b.url_prefixes), urls=tuple(b.urls),
                         sha256=tuple(b.sha256), phash=tuple(b.phash), phash_radius=b.phash_radius)


# --- score (transforms/clip_model.py, filters/clip_threshold.py) ---
def scorer_spec(cfg: CurateConfig) -> ScorerSpec:
    """ScorerSpec from ``score``."""
    s = cfg.score
    return ScorerSpec(model=s.model, pretrained=s.pretrained, batch_size=s.batch_size, device=s.device,
                      precision=s.precision, embeddings=s.embeddings)


def threshold_spec(cfg: CurateConfig) -> ThresholdSpec:
    """ThresholdSpec from ``score.min_score`` and ``score.keep_fraction``."""
    return ThresholdSpec(min_score=cfg.score.min_score, keep_fraction=cfg.score.keep_fraction)


# --- safety (transforms/safety_tags.py, filters/safety.py) ---
def safety_spec(cfg: CurateConfig) -> SafetySpec:
    """SafetySpec from ``safety``; a bad ``safety.thresholds`` entry is a SafetyInputError."""
    s = cfg.safety
    overrides = []
    for entry in s.thresholds:
        tag, sep, value = str(entry).partition("=")
        if value.strip().lower() == "off":
            overrides.append((tag.strip(), None))  # a column only, never filtered
            continue
        try:
            threshold = float(value)
        except ValueError:
            threshold = float("nan")
        if not sep or not 0 <= threshold <= 1:
            raise SafetyInputError(f"safety.thresholds entry {entry!r}: expected tag=value with value in [0, 1] "
                                   "or tag=off")
        overrides.append((tag.strip(), threshold))
    return SafetySpec(prompts=project_path(s.prompts), head=project_path(s.head), logit_scale=s.logit_scale,
                      thresholds=tuple(overrides))


def safety_thresholds(cfg: CurateConfig) -> dict:
    """SafetyFilter's input, {tag: threshold}: reads the prompt file / head (a bad one fails here)."""
    return tag_thresholds(safety_spec(cfg))


# --- dedupe (transforms/lsh.py, transforms/semantic_dedupe.py, filters/dedupe_policy.py) ---
def lsh_spec(cfg: CurateConfig) -> LshSpec:
    """LshSpec from ``dedupe.near_*``."""
    d = cfg.dedupe
    return LshSpec(threshold=d.near_threshold, rounds=d.near_rounds, bands=d.near_bands,
                   colour_delta=d.near_colour_delta, seed=0)  # seed: not a knob


@dataclass(frozen=True)
class NearDedupeSpec:
    """DedupeNear's inputs but the survivor policy (transforms/dedupe.py)."""

    lsh: LshSpec
    cc_rounds: int  # dedupe.near_cc_rounds
    caption_veto: Optional[Callable]  # captions_tell_apart with dedupe.near_caption_veto, else None


def near_dedupe_spec(cfg: CurateConfig) -> NearDedupeSpec:
    """NearDedupeSpec from ``dedupe.near_*``: the LshSpec, ``near_cc_rounds``, ``near_caption_veto``."""
    d = cfg.dedupe
    return NearDedupeSpec(lsh=lsh_spec(cfg), cc_rounds=d.near_cc_rounds,
                          caption_veto=captions_tell_apart if d.near_caption_veto else None)


def semantic_spec(cfg: CurateConfig) -> SemanticSpec:
    """SemanticSpec from ``dedupe.semantic_*``."""
    d = cfg.dedupe
    return SemanticSpec(eps=d.semantic_eps, clusters=d.semantic_clusters, sample=d.semantic_sample,
                        iterations=KMEANS_ITERATIONS, seed=KMEANS_SEED)  # the last two: not knobs


def survivor_policy(cfg: CurateConfig) -> SurvivorPolicy:
    """The survivor policy of DedupeNear and SemanticDedupe, ``dedupe.near_policy``."""
    return SurvivorPolicy(cfg.dedupe.near_policy)


# --- balance (transforms/balance.py) ---
def balance_spec(cfg: CurateConfig) -> BalanceSpec:
    """BalanceSpec from ``balance.*`` and ``caption.languages``; reads and checks balance.metadata now."""
    b = cfg.balance
    return build_spec(b.metadata, b.t, b.t_by_language, cfg.caption.languages, b.before_fetch)


# --- rejection thumbnails (transforms/reject_thumbnails.py) ---
def thumbnail_spec(cfg: CurateConfig) -> Optional[ThumbnailSpec]:
    """ThumbnailSpec from ``output.reject_thumbnail_size``; None when ``output.reject_thumbnails`` is off."""
    o = cfg.output
    return ThumbnailSpec(o.reject_thumbnail_size, JPEG_QUALITY) if o.reject_thumbnails else None


# --- output files (transforms/write_shards.py, transforms/embeddings.py) ---
def samples_per_shard(cfg: CurateConfig) -> int:
    """Rows per file of WriteShards and WriteEmbeddings, ``output.samples_per_shard``."""
    return cfg.output.samples_per_shard
