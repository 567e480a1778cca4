"""Curation config: frozen dataclasses, YAML loading and ``--set`` overrides.

Input: YAML files (later ones override earlier ones; ``configs/base.yaml`` first)
and ``key.sub=value`` overrides. Output: a validated, frozen ``CurateConfig``.
Unknown sections or keys and values of the wrong type are a ``ConfigError``
before anything runs. YAML holds values only; stage order is code (build.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
BASE_CONFIG = CONFIG_DIR / "base.yaml"

RESIZE_MODES = ("no", "border", "keep_ratio", "keep_ratio_largest", "center_crop")
RESAMPLE_FILTERS = ("lanczos", "bicubic", "bilinear", "box")
# Which member of a near-duplicate group survives (filters/dedupe_policy.py).
SURVIVOR_POLICIES = ("largest", "first_by_key", "best_caption", "best_clip_score")
SCORE_PRECISIONS = ("auto", "fp32", "fp16", "bf16")
ENCODE_FORMATS = ("jpg", "webp", "png")


class ConfigError(ValueError):
    """The configuration is invalid; raised before the pipeline is built."""


@dataclass(frozen=True)
class CrawlConfig:
    max_depth: int = 3
    max_pages: int = 10000
    same_host: bool = True
    concurrency: int = 8
    max_page_bytes: int = 5_000_000
    canonical: bool = True  # a page whose rel=canonical URL was crawled already is crawl.duplicate_page
    duplicate_content: bool = True  # a page with the same bytes as one crawled already, too


@dataclass(frozen=True)
class ExtractConfig:
    tracker_max_side: int = 1  # a declared width or height at or below this is extract.tracker
    tracker_patterns: tuple = (
        "facebook.com/tr", "google-analytics.com/", "googletagmanager.com/", "doubleclick.net/",
        "pixel.wp.com/", "stats.wp.com/", "scorecardresearch.com/", "quantserve.com/pixel",
        "bat.bing.com/action", "analytics.twitter.com/", "ct.pinterest.com/", "px.ads.linkedin.com/",
        "/pixel.gif", "/tracking.gif", "/1x1.gif", "/1x1.png", "/spacer.gif", "/blank.gif",
    )
    # an image URL longer than this is extract.bad_url, never cut (transforms/url_guard.py)
    max_url_chars: int = 2048


@dataclass(frozen=True)
class FetchConfig:
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    total_timeout_s: float = 30.0
    max_bytes: int = 20_000_000
    max_redirects: int = 5
    retries: int = 1
    concurrency: int = 32
    per_host_concurrency: int = 8
    per_host_min_interval_s: float = 0.0
    # a host with more URLs than this is spread over several fetch keys (at most per_host_concurrency),
    # its politeness budget split between them (transforms/host_keys.py)
    urls_per_key: int = 1000
    user_agent: str = "wit-curator/0.1 (+https://github.com/wit-curator/wit-curator)"
    respect_robots: bool = True
    respect_noai: bool = True
    allow_private_networks: bool = False
    private_network_allowlist: tuple = ()
    max_host_delay_s: float = 120.0  # a Crawl-delay / Retry-After above this: the host's pairs are fetch.host_too_slow
    respect_tdmrep: bool = True  # TDMRep: tdm-reservation header, <meta>, /.well-known/tdmrep.json
    robots_cache_s: float = 86400.0  # how long a worker trusts a fetched robots.txt (RFC 9309: about a day)


@dataclass(frozen=True)
class LicenseConfig:
    allow: tuple = ()  # licence ids kept ("cc-by-4.0", "cc0-1.0", "unknown", ...); empty = keep all


@dataclass(frozen=True)
class CaptionConfig:
    min_words: int = 3
    min_chars: int = 6
    max_words: int = 64
    max_chars: int = 1000
    placeholders: tuple = (
        "image", "images", "photo", "photos", "picture", "pic", "img", "logo",
        "icon", "banner", "spacer", "thumbnail", "thumb", "click here", "placeholder",
        "untitled", "no alt", "alt", "graphic", "avatar", "button",
    )
    navigation: tuple = (
        "next", "prev", "previous", "home", "up", "back", "forward", "top",
        "more", "menu", "«", "»", "‹", "›", "←", "→", "↑", "↓", "<", ">", "<<", ">>",
    )
    boilerplate_max_images: int = 10  # the same alt on more distinct images of a site: caption.boilerplate (0 = off)
    languages: tuple = ()  # ISO 639-1 codes to keep ("en", "de"); empty = no language rule
    language_min_words: int = 4  # shorter captions are not judged (identification is unreliable)
    language_min_confidence: float = 0.5  # drop only when this sure of another language


@dataclass(frozen=True)
class ResizeConfig:
    image_size: int = 256
    mode: str = "border"
    resize_only_if_bigger: bool = False
    encode_format: str = "jpg"
    encode_quality: int = 95
    max_pixels: int = 89_478_485  # Pillow's decompression-bomb limit
    resample: str = "bicubic"  # downscale filter after the JPEG draft decode (RESAMPLE_FILTERS)
    processes: int = 0  # decode/resize/encode in this many worker processes per fetch worker (0: in its threads)
    svg: bool = False  # rasterise SVG images (transforms/imaging.py); false: SVG responses are not downloaded


@dataclass(frozen=True)
class ImageRulesConfig:
    min_side: int = 32
    max_aspect: float = 3.0


@dataclass(frozen=True)
class DedupeConfig:
    url: bool = True
    url_caption: bool = True
    image_exact: bool = True
    near: bool = True
    near_policy: str = "largest"
    near_threshold: int = 8
    near_colour_delta: int = 20
    near_rounds: int = 30
    near_bands: int = 3
    near_cc_rounds: int = 8  # large-star/small-star rounds of the distributed connected components
    semantic: bool = False
    semantic_eps: float = 0.05
    semantic_clusters: int = 64
    semantic_sample: int = 50000


@dataclass(frozen=True)
class ScoreConfig:
    enabled: bool = True
    model: str = "ViT-B-32"
    pretrained: str = "laion2b_s34b_b79k"
    min_score: float = 0.28
    keep_fraction: float = 0.0
    batch_size: int = 64
    device: str = "auto"
    precision: str = "auto"
    embeddings: bool = True
    accelerator: str = ""  # Beam resource hint on ScoreClip only, e.g. type:nvidia-tesla-t4;count:1;install-nvidia-driver


@dataclass(frozen=True)
class BlocklistConfig:
    # Each a list of files (local or gs://), one entry per line (filters/blocklist_lists.py).
    domains: tuple = ()
    url_prefixes: tuple = ()
    urls: tuple = ()
    sha256: tuple = ()
    phash: tuple = ()
    phash_radius: int = 4


@dataclass(frozen=True)
class SafetyConfig:
    enabled: bool = False  # safety_<tag> columns from the CLIP image embeddings
    prompts: str = "configs/safety_prompts.yaml"  # prompt sets per tag (YAML), local or gs://
    head: str = ""  # a linear head (.npz) on the image embeddings instead of prompts
    filter: bool = False  # drop images whose tag score reaches its threshold (safety.<tag>)
    thresholds: tuple = ()  # "tag=value" entries overriding the prompt file's / head's thresholds
    logit_scale: float = 100.0  # softmax temperature over a tag's prompts (CLIP's own scale)


@dataclass(frozen=True)
class OutputConfig:
    samples_per_shard: int = 10000
    rejections_per_file: int = 200000
    checkpoint: bool = True  # FetchImages outcomes saved under OUT/_work/ while a run goes (--resume)
    checkpoint_every: int = 500  # records per checkpoint file
    keep_fetched: bool = False  # keep OUT/_work/fetched after success, for wit curate --incremental
    spill_images: bool = True  # resized bytes wait in OUT/_work/images, records carry references (memory)
    reject_thumbnails: bool = True  # a small JPEG of every pair dropped after download, for the report
    reject_thumbnail_size: int = 96  # longest side of those thumbnails, in pixels


@dataclass(frozen=True)
class BalanceConfig:
    enabled: bool = False  # MetaCLIP-style balancing over metadata entries (transforms/balance.py)
    metadata: str = ""  # entries file (one per line, or a JSON list); "" = the bundled default
    t: int = 20000  # per-entry cap: a pair is kept with probability 1 - prod(1 - min(1, t / count_e))
    t_by_language: tuple = ()  # "lang=t" entries overriding t for captions of that language
    before_fetch: bool = True  # balance before any image is downloaded


@dataclass(frozen=True)
class CurateConfig:
    crawl: CrawlConfig = field(default_factory=CrawlConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    fetch: FetchConfig = field(default_factory=FetchConfig)
    caption: CaptionConfig = field(default_factory=CaptionConfig)
    resize: ResizeConfig = field(default_factory=ResizeConfig)
    image: ImageRulesConfig = field(default_factory=ImageRulesConfig)
    dedupe: DedupeConfig = field(default_factory=DedupeConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    blocklist: BlocklistConfig = field(default_factory=BlocklistConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    license: LicenseConfig = field(default_factory=LicenseConfig)
    balance: BalanceConfig = field(default_factory=BalanceConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def to_dict(self) -> dict:
        return _plain(dataclasses.asdict(self))

    def config_hash(self) -> str:
        blob = json.dumps(self.to_dict(), sort_keys=True).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()[:16]


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively, so YAML/JSON dumps are clean."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _coerce(section: str, name: str, hint: Any, value: Any) -> Any:
    """Check ``value`` against a field's annotation; convert what is safe."""
    where = f"{section}.{name}"
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if hint is str:
        if value is None:
            return ""
        if not isinstance(value, (str, int, float)):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    if hint is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(str(v) for v in value)
    return value


def _build_section(cls: type, section: str, values: Mapping[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"unknown key(s) in section '{section}': {', '.join(unknown)} "
            f"(known: {', '.join(sorted(known))})"
        )
    kwargs = {k: _coerce(section, k, hints[k], v) for k, v in values.items()}
    return cls(**kwargs)


def _merge(dst: dict, src: Mapping[str, Any], origin: str) -> None:
    for section, values in src.items():
        if values is None:
            continue
        if not isinstance(values, Mapping):
            raise ConfigError(f"{origin}: section '{section}' must be a mapping")
        dst.setdefault(section, {}).update(values)


def parse_override(text: str) -> tuple[str, str, Any]:
    """``"score.min_score=0.3"`` -> ("score", "min_score", 0.3) (value parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"--set expects key.sub=value, got {text!r}")
    dotted, raw = text.split("=", 1)
    parts = dotted.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"--set key must be section.key, got {dotted!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {dotted}: cannot parse value {raw!r}: {exc}") from None
    return parts[0], parts[1], value


def from_dict(raw: Mapping[str, Any]) -> CurateConfig:
    sections = {f.name: f for f in dataclasses.fields(CurateConfig)}
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise ConfigError(f"unknown config section(s): {', '.join(unknown)}")
    hints = typing.get_type_hints(CurateConfig)
    built = {name: _build_section(hints[name], name, raw.get(name, {})) for name in sections}
    cfg = CurateConfig(**built)
    validate(cfg)
    return cfg


def config_path(path: str | Path) -> Path:
    """A --config path: as given when it exists (relative to the working directory), else the
    same relative path under the project root (``configs/sample.yaml`` from anywhere), else under
    ``configs/`` (``sample.yaml``). A path found nowhere is returned as given, to fail with its name."""
    given = Path(path)
    if given.is_absolute() or given.exists():
        return given
    for root in (CONFIG_DIR.parent, CONFIG_DIR):
        if (root / given).is_file():
            return root / given
    return given


def load_config(paths: typing.Sequence[str | Path] = (), overrides: typing.Sequence[str] = ()) -> CurateConfig:
    """Base config, then each YAML in order, then ``--set`` overrides."""
    merged: dict = {}
    for path in [BASE_CONFIG, *[config_path(p) for p in paths]]:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML: {exc}") from None
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: top level must be a mapping of sections")
        _merge(merged, data, str(path))
    for text in overrides:
        section, key, value = parse_override(text)
        merged.setdefault(section, {})[key] = value
    return from_dict(merged)


def validate(cfg: CurateConfig) -> None:
    """Cross-field checks; raises ConfigError with the offending key."""
    checks = [
        (cfg.resize.mode in RESIZE_MODES, f"resize.mode must be one of {RESIZE_MODES}"),
        (cfg.resize.resample in RESAMPLE_FILTERS, f"resize.resample must be one of {RESAMPLE_FILTERS}"),
        (0 <= cfg.resize.processes <= 256, "resize.processes must be in [0, 256]"),
        (cfg.resize.encode_format in ENCODE_FORMATS, f"resize.encode_format must be one of {ENCODE_FORMATS}"),
        (8 <= cfg.resize.image_size <= 8192, "resize.image_size must be in [8, 8192]"),
        (1 <= cfg.resize.encode_quality <= 100, "resize.encode_quality must be in [1, 100]"),
        (cfg.crawl.max_depth >= 0, "crawl.max_depth must be >= 0"),
        (cfg.crawl.max_pages >= 1, "crawl.max_pages must be >= 1"),
        (cfg.extract.tracker_max_side >= 0, "extract.tracker_max_side must be >= 0"),
        (cfg.extract.max_url_chars > 0, "extract.max_url_chars must be > 0"),
        (cfg.caption.boilerplate_max_images >= 0, "caption.boilerplate_max_images must be >= 0 (0 = off)"),
        (cfg.caption.language_min_words >= 1, "caption.language_min_words must be >= 1"),
        (0.0 <= cfg.caption.language_min_confidence <= 1.0, "caption.language_min_confidence must be in [0, 1]"),
        (all(len(c) in (2, 3) and c.isalpha() and c.islower() for c in cfg.caption.languages),
         "caption.languages must be lower-case ISO 639 codes, e.g. [en, de]"),
        (cfg.fetch.max_bytes > 0, "fetch.max_bytes must be > 0"),
        (cfg.fetch.max_redirects >= 0, "fetch.max_redirects must be >= 0"),
        (cfg.fetch.concurrency >= 1, "fetch.concurrency must be >= 1"),
        (cfg.fetch.per_host_concurrency >= 1, "fetch.per_host_concurrency must be >= 1"),
        (cfg.fetch.per_host_min_interval_s >= 0, "fetch.per_host_min_interval_s must be >= 0"),
        (cfg.fetch.urls_per_key >= 1, "fetch.urls_per_key must be >= 1"),
        (cfg.fetch.max_host_delay_s > 0, "fetch.max_host_delay_s must be > 0"),
        (cfg.fetch.robots_cache_s > 0, "fetch.robots_cache_s must be > 0"),
        (cfg.image.max_aspect >= 1.0, "image.max_aspect must be >= 1"),
        (-1.0 <= cfg.score.min_score <= 1.0, "score.min_score must be a cosine in [-1, 1]"),
        (cfg.score.batch_size >= 1, "score.batch_size must be >= 1"),
        (cfg.score.device in ("auto", "cpu", "cuda"), "score.device must be auto, cpu or cuda"),
        (cfg.score.precision in SCORE_PRECISIONS, f"score.precision must be one of {SCORE_PRECISIONS}"),
        (0.0 <= cfg.score.keep_fraction <= 1.0, "score.keep_fraction must be in [0, 1] (0 = use min_score)"),
        (cfg.dedupe.near_policy in SURVIVOR_POLICIES, f"dedupe.near_policy must be one of {SURVIVOR_POLICIES}"),
        (cfg.score.enabled or cfg.dedupe.near_policy != "best_clip_score",
         "dedupe.near_policy best_clip_score needs score.enabled"),
        (0 <= cfg.dedupe.near_threshold <= 32, "dedupe.near_threshold must be in [0, 32] (bits of 64)"),
        (0 <= cfg.dedupe.near_colour_delta <= 255, "dedupe.near_colour_delta must be in [0, 255]"),
        (cfg.dedupe.near_rounds >= 1, "dedupe.near_rounds must be >= 1"),
        (2 <= cfg.dedupe.near_bands <= 8, "dedupe.near_bands must be in [2, 8]"),
        (cfg.dedupe.near_cc_rounds >= 1, "dedupe.near_cc_rounds must be >= 1"),
        (cfg.score.enabled or not cfg.dedupe.semantic, "dedupe.semantic needs score.enabled (CLIP embeddings)"),
        (0.0 < cfg.dedupe.semantic_eps < 1.0, "dedupe.semantic_eps must be in (0, 1)"),
        (cfg.dedupe.semantic_clusters >= 1, "dedupe.semantic_clusters must be >= 1"),
        (cfg.dedupe.semantic_sample >= 1, "dedupe.semantic_sample must be >= 1"),
        (not cfg.score.enabled or bool(cfg.score.model), "score.model is required when scoring"),
        (0 <= cfg.blocklist.phash_radius <= 32, "blocklist.phash_radius must be in [0, 32] (bits of 64)"),
        (cfg.score.enabled or not cfg.safety.enabled, "safety.enabled needs score.enabled (CLIP embeddings)"),
        (cfg.safety.enabled or not cfg.safety.filter, "safety.filter needs safety.enabled"),
        (not cfg.safety.enabled or cfg.score.embeddings, "safety.enabled needs score.embeddings (tags come from them)"),
        (cfg.safety.logit_scale > 0, "safety.logit_scale must be > 0"),
        (cfg.output.samples_per_shard >= 1, "output.samples_per_shard must be >= 1"),
        (cfg.output.rejections_per_file >= 1, "output.rejections_per_file must be >= 1"),
        (cfg.output.checkpoint_every >= 1, "output.checkpoint_every must be >= 1"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def with_overrides(cfg: CurateConfig, **sections: Mapping[str, Any]) -> CurateConfig:
    """A copy of ``cfg`` with some keys changed, validated like YAML input."""
    raw = cfg.to_dict()
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return from_dict(raw)


def dump_yaml(cfg: CurateConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True)
