"""Read a curated output — ours or img2dataset's — into one shape for ``wit inspect``.

Input: a local directory holding either a ``wit curate`` output (``shards/``,
``rejections/``, ``stats.json``, ``run_info.json``) or an img2dataset output folder
(``NNNNN.tar``, ``NNNNN.parquet``, ``NNNNN_stats.json`` side by side; no rejections, no
stats.json). Output: a ``RunData`` — the stats document (stats.json, or one built from the
parquet rows), what the run recorded about itself (run_info.json: date, duration, runner,
scorer; {} when absent), the kept rows, the dropped rows with one shape for both layouts
(without their thumbnails: ``read_reject_thumbnails`` reads those for the rows shown),
the shard files, and image bytes by key read back from the tars.

img2dataset rows whose ``status`` is not ``success`` play the dropped ones: stage
``download`` or ``resize`` (from the status), reason = ``error_message``.
CLIP scores of ``clip.below_threshold`` rejections are parsed from ``detail``
(``"0.1860 < 0.55"``) unless the rejections carry a ``clip_score`` column.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
import tarfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Optional

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import shard_format

log = logging.getLogger(__name__)

WIT, IMG2DATASET = "wit", "img2dataset"
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
CLIP_BELOW = "clip.below_threshold"
REASON_MAX_CHARS = 80
KEPT_COLUMNS = pa.schema([
    ("key", pa.string()), ("url", pa.string()), ("caption", pa.string()), ("page_url", pa.string()),
    ("width", pa.int32()), ("height", pa.int32()), ("original_width", pa.int32()),
    ("original_height", pa.int32()), ("sha256", pa.string()), ("phash", pa.string()),
    ("clip_score", pa.float32()), ("shard", pa.string()),
])
DROPPED_COLUMNS = pa.schema([
    ("key", pa.string()), ("stage", pa.string()), ("reason", pa.string()), ("detail", pa.string()),
    ("page_url", pa.string()), ("image_url", pa.string()), ("caption", pa.string()),
    ("clip_score", pa.float32()),
])
_LEADING_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)")


class ReportInputError(ValueError):
    """The directory is neither a wit output nor an img2dataset output."""


@dataclass
class RunData:
    root: str
    layout: str
    stats: dict
    kept: pa.Table  # KEPT_COLUMNS
    dropped: pa.Table  # DROPPED_COLUMNS
    shards_dir: str
    files: dict = field(default_factory=dict)  # output sizes, see output_files()
    info: dict = field(default_factory=dict)  # run_info.json: date, duration_s, runner, scorer


def parse_clip_score(detail: Optional[str]) -> Optional[float]:
    """The score in a ``clip.below_threshold`` detail (``"0.1860 < 0.55"``), or None."""
    match = _LEADING_NUMBER.match(detail or "")
    return float(match.group(1)) if match else None


def detect_layout(root: str) -> str:
    if os.path.isdir(os.path.join(root, shard_format.SHARDS_DIR)):
        return WIT
    if glob.glob(os.path.join(root, "*_stats.json")) or glob.glob(os.path.join(root, "*.parquet")):
        return IMG2DATASET
    raise ReportInputError(f"{root}: neither a wit output (shards/, stats.json) nor an img2dataset "
                           "output folder (NNNNN.tar + NNNNN.parquet)")


def load_run(root: str) -> RunData:
    """Read ``root`` (either layout) into a ``RunData``."""
    if not os.path.isdir(root):
        raise ReportInputError(f"{root}: no such directory")
    if os.path.basename(os.path.normpath(root)) == shard_format.SHARDS_DIR and \
            os.path.exists(os.path.join(root, "..", shard_format.STATS_FILE)):
        root = os.path.dirname(os.path.normpath(root))  # the user pointed at OUT/shards
    layout = detect_layout(root)
    run = _load_wit(root) if layout == WIT else _load_img2dataset(root)
    run.files = output_files(run)
    log.info("read %s output %s: %d kept, %d dropped rows", layout, root,
             run.kept.num_rows, run.dropped.num_rows)
    return run


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns (missing ones null)."""
    columns = []
    for f in schema:
        if f.name in table.column_names:
            columns.append(pc.cast(table.column(f.name), f.type))
        else:
            columns.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _load_wit(root: str) -> RunData:
    shards_dir = os.path.join(root, shard_format.SHARDS_DIR)
    kept = _conform(shard_format.read_samples_table(shards_dir), KEPT_COLUMNS)
    rejections = shard_format.read_rejections_table(root, shard_format.REJECTION_TEXT_COLUMNS)
    dropped = _conform(rejections, DROPPED_COLUMNS)
    if "clip_score" not in rejections.column_names:
        dropped = _with_parsed_clip_scores(dropped)
    stats_path = os.path.join(root, shard_format.STATS_FILE)
    if os.path.exists(stats_path):
        with open(stats_path, encoding="utf-8") as fh:
            stats = json.load(fh)
    else:
        log.warning("%s has no stats.json (an unfinished run?): counting from the files", root)
        stats = stats_from_rows(kept, dropped, stage_order=())
    return RunData(root, WIT, stats, kept, dropped, shards_dir, info=_read_info(root))


def _read_info(root: str) -> dict:
    path = os.path.join(root, shard_format.RUN_INFO_FILE)
    if not os.path.exists(path):
        return {}  # written before run_info.json existed, or by wit refilter
    try:
        with open(path, encoding="utf-8") as fh:
            info = json.load(fh)
    except (OSError, ValueError) as exc:
        log.warning("%s unreadable (%s): the report shows no run date or duration", path, exc)
        return {}
    return info if isinstance(info, dict) else {}


def _with_parsed_clip_scores(dropped: pa.Table) -> pa.Table:
    reasons = dropped.column("reason").to_pylist()
    details = dropped.column("detail").to_pylist()
    scores = [parse_clip_score(d) if r == CLIP_BELOW else None for r, d in zip(reasons, details)]
    index = dropped.schema.get_field_index("clip_score")
    return dropped.set_column(index, "clip_score", pa.array(scores, pa.float32()))


def _load_img2dataset(root: str) -> RunData:
    tables = []
    for path in sorted(glob.glob(os.path.join(root, "*.parquet"))):
        table = pq.read_table(path)
        shard = os.path.splitext(os.path.basename(path))[0]
        tables.append(table.append_column("shard", pa.array([shard] * table.num_rows, pa.string())))
    if not tables:
        raise ReportInputError(f"{root}: no parquet files (img2dataset writes NNNNN.parquet beside each tar)")
    rows = pa.concat_tables(tables, promote_options="permissive")
    if "status" not in rows.column_names:
        raise ReportInputError(f"{root}: parquet files have no 'status' column: not an img2dataset output")
    ok = pc.fill_null(pc.equal(rows.column("status"), "success"), False)
    kept = _conform(rows.filter(ok), KEPT_COLUMNS)
    dropped = _img2dataset_dropped(rows.filter(pc.invert(ok)))
    stats = stats_from_rows(kept, dropped, stage_order=("download", "resize"))
    stats["img2dataset_stats_files"] = len(glob.glob(os.path.join(root, "*_stats.json")))
    return RunData(root, IMG2DATASET, stats, kept, dropped, root)


def _img2dataset_dropped(failed: pa.Table) -> pa.Table:
    statuses = failed.column("status").to_pylist()
    errors = failed.column("error_message").to_pylist() if "error_message" in failed.column_names \
        else [None] * failed.num_rows
    stages = [(s or "unknown").replace("failed_to_", "") for s in statuses]
    reasons = [_short_reason(e or s or "unknown") for e, s in zip(errors, statuses)]
    table = pa.table({
        "key": failed.column("key"), "stage": pa.array(stages, pa.string()),
        "reason": pa.array(reasons, pa.string()), "detail": pa.array(errors, pa.string()),
        "image_url": failed.column("url"), "caption": failed.column("caption")
        if "caption" in failed.column_names else pa.nulls(failed.num_rows, pa.string()),
    })
    return _conform(table, DROPPED_COLUMNS)


def _short_reason(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= REASON_MAX_CHARS else text[:REASON_MAX_CHARS - 1] + "…"


def stats_from_rows(kept: pa.Table, dropped: pa.Table, stage_order: Iterable[str]) -> dict:
    """A stats.json-shaped document counted from the rows (for outputs that have none)."""
    by_stage: dict = {stage: Counter() for stage in stage_order}
    for stage, reason in zip(dropped.column("stage").to_pylist(), dropped.column("reason").to_pylist()):
        by_stage.setdefault(stage or "unknown", Counter())[reason] += 1
    total = kept.num_rows + dropped.num_rows
    funnel, flowing = [], total
    for stage, reasons in by_stage.items():
        n = sum(reasons.values())
        funnel.append({"stage": stage, "in": flowing, "dropped": dict(reasons.most_common()),
                       "out": flowing - n})
        flowing -= n
    by_reason: Counter = Counter(dropped.column("reason").to_pylist())
    return {"pairs_extracted": total, "kept": kept.num_rows, "rejected": dropped.num_rows,
            "accounting_ok": True, "rejected_by_reason": dict(by_reason.most_common()),
            "funnel": funnel, "pages": None, "thresholds": {}, "scorer": None}


def output_files(run: RunData) -> dict:
    """Counts and bytes of the files a user would copy: shards, parquet, rejections."""
    def sizes(pattern: str) -> tuple[int, int]:
        paths = glob.glob(pattern)
        return len(paths), sum(os.path.getsize(p) for p in paths)

    tars, tar_bytes = sizes(os.path.join(run.shards_dir, "*.tar"))
    parquets, parquet_bytes = sizes(os.path.join(run.shards_dir, "*.parquet"))
    rej, rej_bytes = sizes(os.path.join(run.root, shard_format.REJECTIONS_DIR, "*.parquet"))
    return {"tars": tars, "tar_bytes": tar_bytes, "parquets": parquets, "parquet_bytes": parquet_bytes,
            "rejection_files": rej, "rejection_bytes": rej_bytes}


def read_reject_thumbnails(run: RunData, keys: Iterable[str]) -> dict[str, bytes]:
    """The stored thumbnails (rejections parquet ``thumbnail``) of the dropped rows ``keys``."""
    wanted = sorted({k for k in keys if k})
    if run.layout != WIT or not wanted:
        return {}
    found: dict[str, bytes] = {}
    for path in sorted(glob.glob(os.path.join(run.root, shard_format.REJECTIONS_DIR, "*.parquet"))):
        if "thumbnail" not in pq.read_schema(path).names:
            continue  # written before thumbnails existed
        table = pq.read_table(path, columns=["key", "thumbnail"], filters=[("key", "in", wanted)])
        for key, thumb in zip(table.column("key").to_pylist(), table.column("thumbnail").to_pylist()):
            if thumb and key not in found:
                found[key] = thumb
    return found


def read_images(run: RunData, rows: Iterable[dict]) -> dict[str, bytes]:
    """Image bytes by key for kept ``rows`` (each with ``key`` and ``shard``), one pass per tar."""
    wanted: dict = defaultdict(set)
    for row in rows:
        if row.get("shard") and row.get("key"):
            wanted[row["shard"]].add(row["key"])
    found: dict[str, bytes] = {}
    for shard, keys in sorted(wanted.items()):
        path = os.path.join(run.shards_dir, f"{shard}.tar")
        if not os.path.exists(path):
            log.warning("shard %s listed in parquet but missing", path)
            continue
        with tarfile.open(path) as tar:
            for member in tar:
                key, _, ext = member.name.rpartition(".")
                if key in keys and ext.lower() in IMAGE_EXTS and key not in found:
                    found[key] = tar.extractfile(member).read()
    return found
