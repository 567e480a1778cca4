"""ReadUrlList: image URL + caption pairs from img2dataset-style lists.

Input: a path or glob (local or any Beam filesystem) of ``.parquet``, ``.csv``,
``.tsv``, ``.json`` (an array of objects), ``.jsonl`` or ``.txt`` (one URL per
line) files, gzipped too (``.csv.gz``, ...). Columns ``url`` and ``caption``
by default (names configurable, as img2dataset's ``--url_col``/``--caption_col``).
Output: ``(pairs, rejected)`` — an ``AltPair`` per row (page_url empty: no page
was crawled), key stable per (file name, row), and ``extract.bad_url`` for rows
whose URL is missing or not http(s). Pairs from a list skip the page crawl.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from typing import Iterator
from urllib.parse import urlsplit

import apache_beam as beam
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipeline import metrics
from pipeline.records import AltPair, DropReason, Rejection, make_key

FORMATS = ("parquet", "csv", "tsv", "json", "jsonl", "txt")


class UrlListError(ValueError):
    """A list file that cannot be read as its format (a clear error, before any fetch)."""


def list_format(path: str) -> str:
    name = os.path.basename(path).lower().removesuffix(".gz")
    ext = name.rsplit(".", 1)[-1] if "." in name else ""
    if ext not in FORMATS:
        raise UrlListError(f"{path}: unknown URL list format (expected one of {', '.join(FORMATS)}, gzipped or not)")
    return ext


def read_table(data: bytes, fmt: str, path: str = "") -> pa.Table:
    """The list file's bytes (already un-gzipped) as an Arrow table."""
    try:
        if fmt == "parquet":
            return pq.read_table(io.BytesIO(data))
        if fmt in ("csv", "tsv"):
            opts = pacsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",", newlines_in_values=True)
            return pacsv.read_csv(io.BytesIO(data), parse_options=opts,
                                  convert_options=pacsv.ConvertOptions(strings_can_be_null=False))
        if fmt == "json":
            return pa.Table.from_pylist(json.loads(data.decode("utf-8")))
        if fmt == "jsonl":
            rows = [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
            return pa.Table.from_pylist(rows)
        urls = [line.strip() for line in data.decode("utf-8", errors="replace").splitlines() if line.strip()]
        return pa.table({"url": urls})
    except (pa.ArrowInvalid, json.JSONDecodeError, UnicodeDecodeError, TypeError) as exc:
        raise UrlListError(f"{path}: cannot read as {fmt}: {exc}") from None


def rows_to_pairs(table: pa.Table, source: str, url_col: str = "url", caption_col: str = "caption"
                  ) -> Iterator[AltPair | Rejection]:
    """One AltPair per row; Rejection for a row without a usable URL."""
    if url_col not in table.column_names:
        raise UrlListError(f"{source}: no column {url_col!r} (columns: {', '.join(table.column_names)})")
    urls = table.column(url_col).to_pylist()
    captions = (table.column(caption_col).to_pylist() if caption_col in table.column_names
                else [""] * len(urls))
    extra_cols = [c for c in table.column_names if c not in (url_col, caption_col)]
    extras = {c: table.column(c).to_pylist() for c in extra_cols}
    base = os.path.basename(source)
    for row, (url, caption) in enumerate(zip(urls, captions)):
        url = "" if url is None else str(url).strip()
        extra = tuple((c, _plain(extras[c][row])) for c in extra_cols)
        pair = AltPair(key=make_key(f"list:{base}", row), page_url="", image_url=url[:2000],
                       caption=" ".join(str(caption or "").split()), position=row, extra=extra)
        if urlsplit(url).scheme not in ("http", "https"):
            yield Rejection.of(pair, DropReason.EXTRACT_BAD_URL, f"row {row}: url={url[:200]!r}")
        else:
            yield pair


def _plain(value):
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


def read_list_file(path: str, url_col: str, caption_col: str) -> Iterator[AltPair | Rejection]:
    fmt = list_format(path)
    with FileSystems.open(path) as fh:
        data = fh.read()
    if path.lower().endswith(".gz") and data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    yield from rows_to_pairs(read_table(data, fmt, path), path, url_col, caption_col)


class _ReadFileFn(beam.DoFn):
    def __init__(self, url_col: str, caption_col: str):
        self.url_col, self.caption_col = url_col, caption_col

    def process(self, path: str):
        for out in read_list_file(path, self.url_col, self.caption_col):
            metrics.inc(metrics.Counter.PAIRS_EXTRACTED)
            if isinstance(out, Rejection):
                metrics.inc_reason(DropReason(out.reason))
                yield beam.pvalue.TaggedOutput("rejected", out)
            else:
                yield out


def expand_paths(pattern: str) -> list[str]:
    """Files matching a path or glob, sorted (a clear error when none)."""
    matches = FileSystems.match([pattern])[0].metadata_list
    paths = sorted(m.path for m in matches)
    if not paths:
        raise UrlListError(f"no URL list file matches {pattern!r}")
    for p in paths:
        list_format(p)
    return paths


class ReadUrlList(beam.PTransform):
    """Path/glob of URL lists -> (AltPair, Rejection)."""

    def __init__(self, pattern: str, url_col: str = "url", caption_col: str = "caption"):
        super().__init__()
        self.paths = expand_paths(pattern)
        self.url_col, self.caption_col = url_col, caption_col

    def expand(self, pbegin):
        out = (
            pbegin
            | "ListFiles" >> beam.Create(self.paths)
            | "ReshuffleFiles" >> beam.Reshuffle()
            | "ReadRows" >> beam.ParDo(_ReadFileFn(self.url_col, self.caption_col))
            .with_outputs("rejected", main="pairs")
        )
        return out.pairs, out.rejected
