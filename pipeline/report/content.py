"""What the report and the terminal show, computed from a ``RunData`` (no rendering here).

Input: a ``RunData`` (pipeline/report/loader.py). Output: plain values — the
headline, reason rows in funnel order, the licence mix of the kept samples, the opt-outs per
domain (never ``*.robots_unavailable``), the failed pages, the Run table's rows, seeded
random picks of kept and dropped rows, duplicate groups, the "what would threshold X
remove" table, and the numbers behind the plots. Pure functions: the same run and seed give the same
picks, so two reports of one run are identical.
"""

from __future__ import annotations

import math
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Optional, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.report.loader import CLIP_BELOW, RunData

DUPLICATE_REASONS = ("dedupe.image_exact", "dedupe.url")
NEAR_REASON = "dedupe.image_near"
_DUPLICATE_OF = re.compile(r"duplicate of\s+([0-9A-Za-z_-]+)")
_SIZE = re.compile(r"(\d+)\s*x\s*(\d+)")


@dataclass(frozen=True)
class ReasonRow:
    reason: str
    stage: str
    count: int
    share: float  # of all pairs


def reason_rows(run: RunData) -> list[ReasonRow]:
    """One row per drop reason, in funnel order, biggest first within a stage."""
    total = max(1, run.stats.get("pairs_extracted") or 0)
    rows = []
    for stage in run.stats.get("funnel", []):
        for reason, n in sorted(stage["dropped"].items(), key=lambda kv: (-kv[1], kv[0])):
            rows.append(ReasonRow(reason, stage["stage"], n, n / total))
    return rows


def headline(run: RunData) -> str:
    """One sentence that tells the run: where pairs came from and where they went."""
    s = run.stats
    total, kept = s.get("pairs_extracted", 0), s.get("kept", 0)
    pages = s.get("pages") or {}
    source = (f"{pages.get('fetched', 0)} pages crawled → " if pages else "")
    biggest = sorted(reason_rows(run), key=lambda r: -r.count)[:3]
    losses = ", ".join(f"{r.reason} {r.count}" for r in biggest) or "nothing dropped"
    return (f"{source}{total} image/alt-text pairs → {kept} kept ({percent(kept, total)}). "
            f"Biggest losses: {losses}.")


def percent(n: int, total: int) -> str:
    return f"{100.0 * n / total:.1f}%" if total else "–"


def human_bytes(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def pick_rows(table: pa.Table, n: int, seed: int) -> list[dict]:
    """``n`` rows of ``table`` chosen at random (seeded), in table order."""
    if n <= 0 or table.num_rows == 0:
        return []
    idx = sorted(random.Random(seed).sample(range(table.num_rows), min(n, table.num_rows)))
    return table.take(pa.array(idx, pa.int64())).to_pylist()


def dropped_with_reason(run: RunData, reason: str) -> pa.Table:
    """Dropped rows whose reason is ``reason`` or, given a stage prefix, starts with ``reason.``."""
    reasons = run.dropped.column("reason")
    mask = pc.or_(pc.equal(reasons, reason), pc.starts_with(reasons, reason + "."))
    return run.dropped.filter(pc.fill_null(mask, False))


def lowest_scored(table: pa.Table, n: int) -> list[dict]:
    """The ``n`` kept rows with the lowest CLIP score: the ones a higher threshold removes first."""
    scored = table.filter(pc.is_valid(table.column("clip_score")))
    if scored.num_rows == 0:
        return []
    order = pc.sort_indices(scored, sort_keys=[("clip_score", "ascending"), ("key", "ascending")])
    return scored.take(order[:n]).to_pylist()


def scores(run: RunData) -> tuple[list[float], list[float]]:
    """CLIP scores of kept rows and of rows dropped below the threshold."""
    kept = [s for s in run.kept.column("clip_score").to_pylist() if s is not None]
    below = run.dropped.filter(pc.fill_null(pc.equal(run.dropped.column("reason"), CLIP_BELOW), False))
    dropped = [s for s in below.column("clip_score").to_pylist() if s is not None]
    return kept, dropped


def threshold_rows(kept: Sequence[float], dropped: Sequence[float], current: Optional[float],
                   steps: int = 9) -> list[dict]:
    """For thresholds across the score range: kept count, removed from kept, restored from dropped."""
    everything = list(kept) + list(dropped)
    if not everything:
        return []
    lo, hi = min(everything), max(everything)
    step = nice_step((hi - lo) / max(1, steps - 1))
    first = math.floor(lo / step) * step
    candidates = {round(first + i * step, 4) for i in range(int((hi - first) / step) + 2)}
    if current is not None:
        candidates.add(round(current, 4))
    rows = []
    for t in sorted(candidates):
        removed = sum(1 for s in kept if s < t)
        restored = sum(1 for s in dropped if s >= t)
        rows.append({"threshold": t, "kept": len(kept) - removed + restored, "removed": removed,
                     "restored": restored, "current": current is not None and abs(t - current) < 1e-9})
    return rows


def nice_step(raw: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k that is at least ``raw`` (round table thresholds)."""
    if raw <= 0:
        return 0.01
    base = 10 ** math.floor(math.log10(raw))
    return next(m * base for m in (1, 2, 2.5, 5, 10) if m * base >= raw - 1e-12)


def duplicate_of(detail: Optional[str]) -> Optional[str]:
    match = _DUPLICATE_OF.search(detail or "")
    return match.group(1) if match else None


def _kept_groups(run: RunData, column: str, limit: int) -> list[dict]:
    """Kept rows that share ``column`` (sha256 or phash): every copy's image is stored."""
    values = run.kept.column(column)
    groups: dict = defaultdict(list)
    for row in run.kept.filter(pc.is_valid(values)).to_pylist():
        groups[row[column]].append(row)
    return [{"kept": rows[0], "key": rows[0]["key"], "copies": rows[1:]}
            for _, rows in sorted(groups.items()) if len(rows) > 1][:limit]


def _survivor_groups(run: RunData, reasons: Sequence[str], limit: int) -> list[dict]:
    """Dedupe rejections grouped by the surviving key their ``detail`` names."""
    groups: dict = defaultdict(list)
    table = run.dropped.filter(pc.fill_null(pc.is_in(run.dropped.column("reason"),
                                                     value_set=pa.array(list(reasons), pa.string())), False))
    for row in table.to_pylist():
        survivor = duplicate_of(row["detail"])
        if survivor:
            groups[survivor].append(row)
    kept_by_key = rows_by_key(run.kept, set(groups))
    return [{"kept": kept_by_key.get(key), "key": key, "copies": rows}
            for key, rows in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))][:limit]


def exact_duplicate_groups(run: RunData, limit: int = 12) -> list[dict]:
    """Groups ``{"kept": row or None, "key": survivor, "copies": [rows]}``, biggest first.

    wit: dedupe rejections name the surviving key in ``detail``; the dropped copies
    have the survivor's bytes, so its thumbnail stands for all of them.
    img2dataset: kept rows that share a sha256.
    """
    if run.layout == "img2dataset":
        return _kept_groups(run, "sha256", limit)
    return _survivor_groups(run, DUPLICATE_REASONS, limit)


def near_duplicate_groups(run: RunData, limit: int = 12) -> Optional[list[dict]]:
    """Near-duplicate groups, same shape as ``exact_duplicate_groups``; None without phash data.

    From ``dedupe.image_near`` rejections (the dropped images are not stored: only the
    kept one has a thumbnail), else from kept rows sharing a ``phash``.
    """
    dropped = _survivor_groups(run, (NEAR_REASON,), limit)
    if dropped:
        return dropped
    if run.kept.column("phash").null_count == run.kept.num_rows:
        return None
    return _kept_groups(run, "phash", limit)


def rows_by_key(table: pa.Table, keys: set) -> dict:
    if not keys:
        return {}
    mask = pc.is_in(table.column("key"), value_set=pa.array(sorted(keys), pa.string()))
    return {row["key"]: row for row in table.filter(mask).to_pylist()}


def caption_words(table: pa.Table) -> list[int]:
    return [len((c or "").split()) for c in table.column("caption").to_pylist()]


def dropped_image_sizes(run: RunData) -> list[tuple[int, int]]:
    """(width, height) of images dropped by image rules, parsed from ``detail`` (``"16x16 < 32px"``)."""
    sizes = []
    image_rows = dropped_with_reason(run, "image")
    for detail in image_rows.column("detail").to_pylist():
        match = _SIZE.search(detail or "")
        if match:
            sizes.append((int(match.group(1)), int(match.group(2))))
    return sizes


@dataclass(frozen=True)
class LicenseRow:
    license: str
    count: int
    share: float  # of kept samples


def license_rows(run: RunData) -> list[LicenseRow]:
    """The licence mix of the kept samples (stats.json ``license.kept``), most first; [] when the
    run recorded none (older outputs, img2dataset)."""
    mix = (run.stats.get("license") or {}).get("kept") or {}
    total = max(1, sum(mix.values()))
    return [LicenseRow(lic, n, n / total) for lic, n in sorted(mix.items(), key=lambda kv: (-kv[1], kv[0]))]


# Reasons an opt-out table must never show: RFC 9309 reads a robots.txt that answers 5xx or not at all
# as "disallow everything", but that is a host that is down, not one that said no (transforms/opt_out.py
# leaves it out; older stats.json files may still carry it).
NOT_OPT_OUT = frozenset(["fetch.robots_unavailable", "crawl.robots_unavailable"])


@dataclass(frozen=True)
class OptOutView:
    reasons: list  # opt-out reason codes, sorted
    total: dict  # {reason: n}
    domains: list  # [(domain, {reason: n})], most refused first, as stats.json lists them
    domain_count: int  # domains that refused anything (the list may be cut)


def opt_out_view(run: RunData, max_domains: int = 25) -> Optional[OptOutView]:
    """stats.json ``opt_out`` without the reasons that are not opt-outs; None when nothing was refused."""
    opt_out = run.stats.get("opt_out") or {}
    total = {r: n for r, n in (opt_out.get("total") or {}).items() if r not in NOT_OPT_OUT and n}
    if not total:
        return None
    domains = []
    for domain, counts in (opt_out.get("by_domain") or {}).items():
        kept = {r: n for r, n in counts.items() if r not in NOT_OPT_OUT and n}
        if kept:
            domains.append((domain, kept))
    return OptOutView(sorted(total), total, domains[:max_domains], int(opt_out.get("domains") or len(domains)))


def failed_pages(run: RunData) -> dict:
    """Pages that could not be crawled: ``{"total", "by_reason": {reason: n}, "samples": [{url, reason,
    detail}]}`` from stats.json ``pages`` (samples: a few per reason; none in older outputs)."""
    pages = run.stats.get("pages") or {}
    by_reason = dict(sorted((pages.get("failed_by_reason") or {}).items(), key=lambda kv: (-kv[1], kv[0])))
    samples = [s for s in pages.get("failed_samples") or [] if isinstance(s, dict)]
    return {"total": int(pages.get("failed") or 0), "by_reason": by_reason, "samples": samples}


def human_duration(seconds) -> str:
    if seconds is None:
        return "–"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, s = divmod(int(round(seconds)), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m:02d} min" if hours else f"{m} min {s:02d} s"


def readable_scorer(glued: Optional[str]) -> Optional[str]:
    """A readable scorer name from stats.json's ``scorer`` (``model/pretrained`` glued: older outputs).

    ``configs/models/wit-tiny.json/models/wit-tiny-scorer.pt`` -> ``wit-tiny · wit-tiny-scorer.pt``;
    ``ViT-B-32/laion2b_s34b_b79k`` -> ``ViT-B-32 · laion2b_s34b_b79k``.
    """
    if not glued:
        return None
    if ".json/" in glued:  # a model config file, then the weights
        model, pretrained = glued.split(".json/", 1)
        model = model.rsplit("/", 1)[-1]
    elif "//" in glued:  # an open_clip name, then an absolute weights path
        model, pretrained = glued.split("//", 1)
        model = model.rsplit("/", 1)[-1]
    elif glued.count("/") == 1:
        model, pretrained = glued.split("/")
    else:  # a path we cannot split: its last two parts say the most
        model, _, pretrained = glued.rstrip("/").rpartition("/")
        model = model.rsplit("/", 1)[-1]
    pretrained = pretrained.rstrip("/").rsplit("/", 1)[-1]
    return f"{model} · {pretrained}" if model and pretrained else glued


def run_rows(run: RunData) -> list[tuple[str, str]]:
    """The Run table's head: date, duration, runner, scorer, config hash (what the run recorded)."""
    info, stats = run.info or {}, run.stats
    scorer = (info.get("scorer") or {}).get("name") if isinstance(info.get("scorer"), dict) else None
    rows = [("date", info.get("date") or "–"),
            ("duration", human_duration(info.get("duration_s")) if info.get("duration_s") is not None else "–"),
            ("runner", info.get("runner") or "–"),
            ("scorer", scorer or readable_scorer(stats.get("scorer"))
             or ("none (scoring off)" if run.layout == "wit" else "–"))]
    if stats.get("config_hash"):
        rows.append(("config hash", stats["config_hash"]))
    return rows
