"""ReadUrlList: image URL + caption pairs from img2dataset-style lists.

Input: a path or glob (local or any Beam filesystem) of ``.parquet``, ``.csv``,
``.tsv``, ``.json`` (an array of objects), ``.jsonl`` or ``.txt`` (one URL per
line) files, gzipped too (``.csv.gz``, ...). Columns ``url`` and ``caption``
by default (names configurable, as img2dataset's ``--url_col``/``--caption_col``);
other columns ride along in ``extra``. Pairs from a list skip the page crawl.
A ``uid`` column (DataComp's pool layout: 32 hex digits; name configurable, "" =
none) is carried as ``AltPair.uid`` and written as the samples' ``uid`` column, so
``wit export datacomp`` can name the kept samples by their pool ids. A uid that is
not 32 hex digits does not drop its row: the pair has no uid, the value stays in
``extra``, and each file's count of them is logged as a warning
(list_rows.py ``parse_uid``).

Output: ``(pairs, rejected)`` — an ``AltPair`` per row (page_url empty: no page
was crawled), or a ``Rejection``:
- ``extract.bad_url``: the URL is missing, not text, not http(s), does not parse
  (a bad IPv6 literal, a bad port, no host) or is longer than ``max_url_chars``
  (the length is in the detail; a URL is never cut);
- ``extract.bad_encoding``: the URL is not valid UTF-8 (a lone surrogate in JSON);
- ``extract.bad_row``: a row that is no record: a JSON array element or JSONL line
  that is not an object (``null``, a number, a string), a JSONL line that is not
  JSON, a CSV/TSV line with the wrong number of fields. The other rows are kept;
- ``extract.unreadable_file``: a file that cannot be read as its format at all
  (corrupt gzip or parquet, JSON that does not parse or is not an array, no URL
  column): one rejection for the file, the run goes on;
- ``extract.internal_error``: an unexpected exception on one row (that row), or
  reading a file (the file, or the rest of it), with the exception and where
  (pipeline/faults.py).

Encoding policy (text formats): UTF-8, a BOM stripped (a UTF-16/32 BOM: that
encoding). Bytes that are not UTF-8 in a caption, any other text column or a
column name are replaced with U+FFFD, that value only (pyarrow alone types such a
column as binary, and every value of it came out as ``"b'...'"``); a row whose URL
is not valid UTF-8 is ``extract.bad_encoding`` (a guessed URL would name another
resource). JSON's lone surrogates (``"\\ud800"``) are treated the same way: they
could not be encoded later. Parquet strings are UTF-8 by format; a binary URL
column is decoded under the same policy. No value is ever written as ``str(bytes)``.

Keys: stable per (the file's full path, row): two lists with the same name in
different folders give different keys. Row numbers count the data rows (CSV/TSV,
parquet), the array elements (JSON) or the non-blank lines (JSONL, TXT); a CSV
line pyarrow skips as malformed has a negative number of its own (-1 - its line
number), and -1 is the file's.

Speed: CSV is parsed by pyarrow (one thread: deterministic, and faster than
several on small machines); the whole file's UTF-8 is checked in C first, and
only a file that fails is repaired (decoded with U+FFFD and re-encoded, once)
before pyarrow reads it, its URLs with U+FFFD then ``extract.bad_encoding``.
A 1M-row CSV reads in ~8 s, as before these checks.
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib
from typing import Iterator

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipeline import faults, metrics
from pipeline.records import AltPair, DropReason, Rejection, make_key
from transforms.list_rows import UID_COL, Unreadable, file_rows, short_path, uid_invalid

log = logging.getLogger(__name__)

FORMATS = ("parquet", "csv", "tsv", "json", "jsonl", "txt")
_FILE_INDEX = -1  # the key of a file's own rejection (rows are >= 0, skipped CSV lines <= -2)


class UrlListError(ValueError):
    """A list path or glob that names no readable list (a clear error, before any fetch)."""


def list_format(path: str) -> str:
    name = os.path.basename(path).lower().removesuffix(".gz")
    ext = name.rsplit(".", 1)[-1] if "." in name else ""
    if ext not in FORMATS:
        raise UrlListError(f"{path}: unknown URL list format (expected one of {', '.join(FORMATS)}, gzipped or not)")
    return ext


def source_id(path: str) -> str:
    """What keys are made from: the full path (absolute for a local file)."""
    return f"list:{path if '://' in path else os.path.abspath(path)}"


# ---- files --------------------------------------------------------------------------------------

def _file_rejection(source: str, path: str, reason: DropReason, detail: str) -> Rejection:
    return Rejection(key=make_key(source, _FILE_INDEX), stage=reason.stage, reason=reason.value,
                     detail=f"{detail} ({short_path(path)})"[:300])


def _read_bytes(path: str) -> bytes:
    try:
        # Un-gzipped here, not by Beam: its AUTO mode returns b"" for a corrupt file and a silent
        # prefix of a truncated one (a last row cut mid-URL would be fetched).
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            data = fh.read()
        if path.lower().endswith(".gz") and data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise Unreadable(f"cannot read the file: {type(exc).__name__}: {exc}"[:200]) from None
    return data


def _file_rows(path: str, source: str, url_col: str, caption_col: str, max_chars: int, uid_col: str):
    fmt = list_format(path)
    return file_rows(fmt, _read_bytes(path), source, path, url_col, caption_col, max_chars, uid_col)


def _counting_invalid_uids(rows: Iterator, path: str, uid_col: str) -> Iterator:
    """The rows, unchanged; at the end one warning with the count of uids that were not uids."""
    invalid, example = 0, ""
    for out in rows:
        if isinstance(out, AltPair) and uid_invalid(out, uid_col):
            invalid += 1
            example = example or repr(dict(out.extra)[uid_col])[:60]
        yield out
    if invalid:
        log.warning("%s: %d row(s) with a %r value that is not a 32-hex-digit uid (e.g. %s): kept without "
                    "a uid, the value left in extra", short_path(path), invalid, uid_col, example)


def read_list_file(path: str, url_col: str = "url", caption_col: str = "caption", *,
                   max_url_chars: int, uid_col: str = UID_COL) -> Iterator[AltPair | Rejection]:
    """Every row of one list file as a pair or a rejection; a file that cannot be read at all is
    one ``extract.unreadable_file``, an unexpected exception one ``extract.internal_error`` (for
    the file, or the rest of it: rows already out stay). ``max_url_chars``: extract.max_url_chars
    (ExtractSpec.max_url_chars)."""
    source = source_id(path)
    try:
        yield from _counting_invalid_uids(_file_rows(path, source, url_col, caption_col, max_url_chars, uid_col),
                                          path, uid_col)
    except (Unreadable, UrlListError) as exc:
        yield _file_rejection(source, path, DropReason.EXTRACT_UNREADABLE_FILE, str(exc))
    except Exception as exc:  # per-file fault isolation: a bug one file trips costs that file
        reason = DropReason.EXTRACT_INTERNAL
        yield _file_rejection(source, path, reason, faults.internal_error(reason, exc, path))


class _ReadFileFn(beam.DoFn):
    def __init__(self, url_col: str, caption_col: str, max_url_chars: int, uid_col: str = UID_COL):
        self.url_col, self.caption_col, self.max_url_chars = url_col, caption_col, max_url_chars
        self.uid_col = uid_col

    def process(self, path: str):
        for out in read_list_file(path, self.url_col, self.caption_col, max_url_chars=self.max_url_chars,
                                  uid_col=self.uid_col):
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
    """Path/glob of URL lists -> (AltPair, Rejection); ``max_url_chars`` is extract.max_url_chars."""

    def __init__(self, pattern: str, url_col: str = "url", caption_col: str = "caption", *,
                 max_url_chars: int, uid_col: str = UID_COL):
        super().__init__()
        self.paths = expand_paths(pattern)
        self.url_col, self.caption_col, self.max_url_chars = url_col, caption_col, max_url_chars
        self.uid_col = uid_col

    def expand(self, pbegin):
        out = (
            pbegin
            | "ListFiles" >> beam.Create(self.paths)
            | "ReshuffleFiles" >> beam.Reshuffle()
            | "ReadRows" >> beam.ParDo(_ReadFileFn(self.url_col, self.caption_col, self.max_url_chars,
                                                    self.uid_col))
            .with_outputs("rejected", main="pairs")
        )
        return out.pairs, out.rejected
