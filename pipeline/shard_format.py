"""The output contract: shard names, tar layout, parquet schemas, sizes.json.

Input: plain rows (dicts) and encoded image bytes. Output: bytes of webdataset
tars and parquet files, and helpers to list/read them. pyarrow and the standard
library only: the trainer and other readers import this without Beam.

Layout (DESIGN.md §6)::

    OUT/shards/00000.tar      {key}.jpg {key}.txt {key}.json, members sorted by key
    OUT/shards/00000.parquet  one row per sample (a superset of img2dataset's columns)
                              (``license``: the SPDX-style id the page declared, or ``unknown``;
                              ``uid``: the input row's own id, DataComp's 32 hex digits, or null)
    OUT/shards/sizes.json     {"00000.tar": n, ...}
    OUT/rejections/NNNNN.parquet  key, stage, reason, detail, page_url, image_url, caption, thumbnail
    OUT/stats.json, OUT/run_config.yaml, OUT/run_info.json (date, duration, runner: the one file a rerun changes)

Tars are byte-reproducible: fixed mtime, owner and mode, members in key order.
"""

from __future__ import annotations

import glob
import io
import json
import os
import tarfile
from typing import Iterable, Mapping, Optional, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

SHARDS_DIR = "shards"
REJECTIONS_DIR = "rejections"
SIZES_FILE = "sizes.json"
STATS_FILE = "stats.json"
RUN_CONFIG_FILE = "run_config.yaml"
RUN_INFO_FILE = "run_info.json"  # when, how long, on what runner (pipeline/run.py): differs per run
# Files that differ between reruns by design (when and how the run went); every other file is the same bytes.
VOLATILE_FILES = (RUN_INFO_FILE,)
TAR_MTIME = 946684800  # 2000-01-01: fixed so reruns give identical bytes

SAMPLE_SCHEMA = pa.schema([
    ("key", pa.string()),
    ("url", pa.string()),
    ("caption", pa.string()),
    ("status", pa.string()),
    ("error_message", pa.string()),
    ("width", pa.int32()),
    ("height", pa.int32()),
    ("original_width", pa.int32()),
    ("original_height", pa.int32()),
    ("exif", pa.string()),
    ("sha256", pa.string()),
    ("phash", pa.string()),
    ("clip_score", pa.float32()),
    ("clip_model", pa.string()),
    ("page_url", pa.string()),
    ("final_url", pa.string()),
    ("mime", pa.string()),
    ("page_title", pa.string()),
    ("title", pa.string()),
    ("figcaption", pa.string()),
    ("heading", pa.string()),
    ("lang", pa.string()),
    ("license", pa.string()),  # SPDX-style id ("cc-by-4.0", "other", "unknown"; transforms/license.py)
    ("uid", pa.string()),  # a URL list's uid column (DataComp's 32 lower-case hex digits); null = none
    ("extra", pa.string()),  # JSON object of a URL list's extra columns
    ("shard", pa.string()),
])

SAFETY_PREFIX = "safety_"  # safety_<tag> float32 columns follow the fixed ones when safety.enabled


def sample_schema(rows: Sequence[Mapping]) -> pa.Schema:
    """SAMPLE_SCHEMA plus a float32 ``safety_<tag>`` column per tag the rows carry (sorted)."""
    tags = sorted({k for r in rows for k in r if k.startswith(SAFETY_PREFIX)})
    return pa.schema(list(SAMPLE_SCHEMA) + [pa.field(name, pa.float32()) for name in tags])


REJECTION_SCHEMA = pa.schema([
    ("key", pa.string()),
    ("stage", pa.string()),
    ("reason", pa.string()),
    ("detail", pa.string()),
    ("page_url", pa.string()),
    ("image_url", pa.string()),
    ("caption", pa.string()),
    # JPEG, longest side output.reject_thumbnail_size (96): pairs dropped after download only, else
    # null (transforms/reject_thumbnails.py). Read it only for the rows you show: REJECTION_TEXT_COLUMNS.
    ("thumbnail", pa.binary()),
])
REJECTION_TEXT_COLUMNS = tuple(n for n in REJECTION_SCHEMA.names if n != "thumbnail")


def shard_name(index: int) -> str:
    return f"{index:05d}"


def _tarfile_header(name: str, size: int) -> bytes:
    """tarfile's own ustar header for one of our members (the reference for _header)."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = TAR_MTIME
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")


# Every header of ours differs only in name, size and checksum: the fixed fields
# are encoded once, as tarfile encodes them (tests check byte equality).
_MODE_IDS = b"0000644\0" + b"0000000\0" * 2  # mode, uid, gid
_MTIME = b"%011o\0" % TAR_MTIME
_TAIL = (b"0" + b"\0" * 100 + b"ustar\x0000"  # type, linkname, magic + version
         + b"\0" * (64 + 16 + 167))  # uname, gname, devmajor, devminor (empty for files), prefix, padding
_FIXED_SUM = sum(_MODE_IDS) + sum(_MTIME) + sum(_TAIL) + 8 * 32  # the checksum field counts as 8 spaces


def _header(name: str, size: int) -> bytes:
    """The 512-byte ustar header tarfile writes, built without TarInfo (~10x faster).

    tarfile's ``tobuf`` costs ~60 us a member and a shard has three per sample;
    this fills the only three fields that vary. Names or sizes beyond ustar's
    plain fields go through tarfile itself.
    """
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) > 100 or size >= 8 ** 11:
        return _tarfile_header(name, size)
    size_field = b"%011o\0" % size
    checksum = sum(raw) + sum(size_field) + _FIXED_SUM  # NUL padding adds nothing
    return raw.ljust(100, b"\0") + _MODE_IDS + size_field + _MTIME + b"%06o\0 " % checksum + _TAIL


def _member(name: str, payload: bytes) -> list:
    """One regular-file member: header, payload, NUL padding to a whole block."""
    pad = -len(payload) % tarfile.BLOCKSIZE
    return [_header(name, len(payload)), payload, tarfile.NUL * pad]


def tar_bytes(samples: Sequence[Mapping]) -> bytes:
    """A webdataset tar from samples ``{"key", "ext", "image", "caption", "meta"}``.

    Samples are written in key order, each as image, txt, json members. The bytes are
    those ``tarfile.open(mode="w", format=USTAR_FORMAT)`` + ``addfile`` write (a test
    checks), assembled here from prebuilt headers: ``addfile`` copies each TarInfo
    and streams each payload, and ``TarInfo.tobuf`` alone took most of WriteShards' time.
    """
    chunks = []
    for s in sorted(samples, key=lambda s: s["key"]):
        key = s["key"]
        if "." in key or "/" in key:
            raise ValueError(f"sample key must not contain '.' or '/': {key!r}")
        chunks += _member(f"{key}.{s['ext']}", s["image"])
        chunks += _member(f"{key}.txt", s["caption"].encode("utf-8"))
        meta = json.dumps(s["meta"], sort_keys=True, ensure_ascii=False)
        chunks += _member(f"{key}.json", meta.encode("utf-8"))
    chunks.append(tarfile.NUL * (2 * tarfile.BLOCKSIZE))  # end-of-archive marker
    size = sum(map(len, chunks))
    chunks.append(tarfile.NUL * (-size % tarfile.RECORDSIZE))  # whole records, as tarfile pads
    return b"".join(chunks)


def parquet_bytes(rows: Iterable[Mapping], schema: pa.Schema) -> bytes:
    """Rows (dicts) as a parquet file with exactly ``schema``'s columns."""
    rows = list(rows)
    columns = {name: [r.get(name) for r in rows] for name in schema.names}
    table = pa.Table.from_pydict(columns, schema=schema)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def sizes_json(sizes: Mapping[str, int]) -> bytes:
    return (json.dumps(dict(sorted(sizes.items())), indent=1) + "\n").encode("utf-8")


# ---- readers (local paths; the trainer and tests use these) -----------------


def list_tars(shards_dir: str) -> list[str]:
    """Sorted tar paths of a shards directory."""
    return sorted(glob.glob(os.path.join(shards_dir, "*.tar")))


def read_sizes(shards_dir: str) -> dict[str, int]:
    """``sizes.json`` of a shards directory ({} when absent)."""
    path = os.path.join(shards_dir, SIZES_FILE)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as fh:
        return {str(k): int(v) for k, v in json.load(fh).items()}


def read_samples_table(shards_dir: str) -> pa.Table:
    """All sidecar parquet rows of a shards directory, in shard order."""
    paths = sorted(glob.glob(os.path.join(shards_dir, "*.parquet")))
    if not paths:
        return SAMPLE_SCHEMA.empty_table()
    return pa.concat_tables([pq.read_table(p) for p in paths])


def read_rejections_table(output_dir: str, columns: Optional[Sequence[str]] = None) -> pa.Table:
    """All rejection rows of an output; ``columns``: only those (the ones a file lacks, e.g.
    ``thumbnail`` in outputs written before it existed, come back null)."""
    paths = sorted(glob.glob(os.path.join(output_dir, REJECTIONS_DIR, "*.parquet")))
    schema = REJECTION_SCHEMA if columns is None else pa.schema([REJECTION_SCHEMA.field(c) for c in columns])
    if not paths:
        return schema.empty_table()
    if columns is None:
        return pa.concat_tables([pq.read_table(p) for p in paths], promote_options="permissive")
    tables = []
    for path in paths:
        present = [c for c in columns if c in pq.read_schema(path).names]
        table = pq.read_table(path, columns=present)
        tables.append(pa.table({c: table.column(c) if c in present else pa.nulls(table.num_rows, schema.field(c).type)
                                for c in columns}, schema=schema))
    return pa.concat_tables(tables)
