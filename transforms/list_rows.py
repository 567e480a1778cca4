"""Rows of one URL-list file: its bytes in one format -> pairs and rejections (no Beam import).

Input: the bytes of one list file (already un-gzipped), its format, the key source
(``url_list.source_id``), the URL, caption and uid column names and the URL length limit.
Output: an ``AltPair`` per row, or a ``Rejection`` (``extract.bad_url``,
``extract.bad_encoding``, ``extract.bad_row``, ``extract.internal_error`` for one row);
``Unreadable`` is raised for a file that cannot be read as its format at all (the caller
makes it the file's one ``extract.unreadable_file``). transforms/url_list.py states the
encoding policy and the key scheme this implements.

The uid column (DataComp's ``uid``: 32 hex digits, a 128-bit id) becomes ``AltPair.uid``
(lower case) and leaves ``extra``. A blank or null uid is no uid. Any other value (wrong
length, not hex, not text) is never a reason to drop the row: the pair keeps ``uid=""``
and the value stays in ``extra`` under the column's name, so nothing is lost and
``uid_invalid`` (url_list.py counts and logs them per file) and ``wit export datacomp``
(which refuses samples without a uid unless told to skip them) can tell.
"""

from __future__ import annotations

import codecs
import io
import json
import re
import struct
from typing import Any, Iterable, Iterator

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline import faults
from pipeline.records import AltPair, DropReason, Rejection, make_key
from transforms.url_guard import url_problem

_CSV_BLOCK_BYTES = 16 << 20  # pyarrow refuses a row longer than one block (1 MiB by default)
_SURROGATE = re.compile("[\ud800-\udfff]")
_OTHER_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
               (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_PLAIN_TYPES = (pa.types.is_string, pa.types.is_large_string, pa.types.is_integer, pa.types.is_floating,
                pa.types.is_boolean, pa.types.is_null)
_URL_NOT_TEXT = "URL is not valid UTF-8"
_REPLACED = "\ufffd"
# DataComp's uid: 128 bits as 32 hex digits. ASCII classes only (no str.isdigit-style surprises).
_UID = re.compile(r"[0-9a-fA-F]{32}")
UID_COL = "uid"


class Unreadable(Exception):
    """The file cannot be read as its format at all (its one ``extract.unreadable_file``)."""


def short_path(path: str) -> str:
    return path if len(path) <= 100 else "…" + path[-99:]


# ---- values -------------------------------------------------------------------------------------

def _fix_text(text: str) -> str:
    """Lone surrogates (JSON escapes, undecodable bytes kept by surrogateescape) -> U+FFFD."""
    return _SURROGATE.sub("\ufffd", text) if not text.isascii() else text


def _caption(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    elif isinstance(value, str):
        value = _fix_text(value)
    else:
        value = _plain_text(value)
    return " ".join(value.split())


def _plain_text(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return _fix_text(json.dumps(value, ensure_ascii=False, default=str))
    return _fix_text(str(value))


def _plain(value: Any):
    """An extra column's value as metadata can carry it: scalars as they are, text repaired."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return _fix_text(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return _plain_text(value)


def _url(value: Any) -> tuple[str, str]:
    """(the URL text, "") or (what to show of it, why it is not text: ``_URL_NOT_TEXT`` or other)."""
    if isinstance(value, str):
        if not value.isascii() and _SURROGATE.search(value):
            return _fix_text(value), _URL_NOT_TEXT
        return value.strip(), ""
    if value is None:
        return "", "no URL"
    if isinstance(value, bytes):
        return _utf8_url(value)
    return _plain_text(value)[:300], f"URL is not text: a {type(value).__name__}"


def _utf8_url(value: bytes) -> tuple[str, str]:
    """A URL's bytes as text, strictly: a replaced byte would make another URL."""
    try:
        return value.decode("utf-8").strip(), ""
    except UnicodeDecodeError as exc:
        return value.decode("utf-8", errors="replace"), f"{_URL_NOT_TEXT} (byte {exc.start})"


def parse_uid(value: Any) -> tuple[str, str]:
    """(uid, "") for 32 hex digits (surrounding blanks ignored, lower-cased); ("", "") for no
    uid (null, blank); ("", why) for any other value."""
    if value is None:
        return "", ""
    if not isinstance(value, str):
        return "", f"a {type(value).__name__}, not text"
    text = value.strip()
    if not text:
        return "", ""
    if _UID.fullmatch(text):
        return text.lower(), ""
    return "", f"not 32 hex digits: {_fix_text(text)[:40]!r}"


def _take_uid(extra: tuple, uid_col: str) -> tuple[str, tuple]:
    """(the row's uid, its extra without the uid column); an invalid uid stays in extra."""
    if not uid_col or not any(name == uid_col for name, _ in extra):
        return "", extra
    value = next(v for name, v in extra if name == uid_col)
    uid, problem = parse_uid(value)
    if problem:
        return "", extra
    return uid, tuple((name, v) for name, v in extra if name != uid_col)


def uid_invalid(pair: AltPair, uid_col: str = UID_COL) -> bool:
    """True when the pair's row had a uid value that is not a uid (it stayed in ``extra``)."""
    return not pair.uid and bool(uid_col) and any(name == uid_col for name, _ in pair.extra)


# ---- rows -> pairs ------------------------------------------------------------------------------

def _row_result(source: str, index: int, url: Any, caption: Any, extra: tuple, max_chars: int,
                uid_col: str = UID_COL):
    """The pair of one row, or its rejection (``extract.bad_encoding``, ``extract.bad_url``)."""
    text, not_text = _url(url)
    uid, extra = _take_uid(extra, uid_col)
    pair = AltPair(key=make_key(source, index), page_url="", image_url=text, caption=_caption(caption),
                   position=index, extra=extra, uid=uid)
    if not_text:
        reason = DropReason.EXTRACT_BAD_ENCODING if not_text.startswith(_URL_NOT_TEXT) else DropReason.EXTRACT_BAD_URL
        return _rejected(pair, reason, f"row {index}: {not_text}")
    problem = url_problem(text, max_chars) if text else "no URL"
    if problem:
        return _rejected(pair, DropReason.EXTRACT_BAD_URL, f"row {index}: {problem}: url={text[:200]!r}")
    return pair


def _rejected(pair: AltPair, reason: DropReason, detail: str) -> Rejection:
    """A row's rejection, its URL and caption bounded (a 100 KB URL is refused, not carried)."""
    return Rejection(key=pair.key, stage=reason.stage, reason=reason.value, detail=detail[:300],
                     image_url=pair.image_url[:300], caption=pair.caption[:2000])


def _bad_row(source: str, path: str, index: int, detail: str) -> Rejection:
    reason = DropReason.EXTRACT_BAD_ROW
    return Rejection(key=make_key(source, index), stage=reason.stage, reason=reason.value,
                     detail=f"{detail} ({short_path(path)})"[:300])


def _row_internal_error(source: str, index: int, exc: Exception) -> Rejection:
    reason = DropReason.EXTRACT_INTERNAL
    key = make_key(source, index)
    return Rejection(key=key, stage=reason.stage, reason=reason.value,
                     detail=faults.internal_error(reason, exc, f"{source} row {index}"))


def _pairs(source: str, rows: Iterable[tuple], max_chars: int, uid_col: str = UID_COL
           ) -> Iterator[AltPair | Rejection]:
    """(index, url, caption, extra) rows -> pairs; a row whose handling raises is that row's
    ``extract.internal_error`` (a bug one row trips costs that row)."""
    for index, url, caption, extra in rows:
        try:
            out = _row_result(source, index, url, caption, extra, max_chars, uid_col)
        except Exception as exc:  # per-row fault isolation (DESIGN.md §4)
            out = _row_internal_error(source, index, exc)
        yield out


# ---- tables (parquet, CSV, TSV) -----------------------------------------------------------------

def _names(table: pa.Table) -> list[str]:
    try:
        return table.column_names
    except UnicodeDecodeError:  # a parquet schema is not checked on read
        raise Unreadable("column names that are not UTF-8") from None


def _column(table: pa.Table, name: str):
    found = [i for i, n in enumerate(_names(table)) if n == name]
    if len(found) != 1:
        what = "no column" if not found else f"{len(found)} columns named"
        raise Unreadable(f"{what} {name!r} (columns: {', '.join(_names(table))[:150]})")
    return table.column(found[0])


def _values(column, plain: bool) -> list:
    """A column's Python values. Binary columns (pyarrow's type for text that is not all UTF-8)
    are cast to text in C when they are valid after all; else left as bytes for the row policy."""
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        try:
            return column.cast(pa.string()).to_pylist()
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            values = column.to_pylist()
            return [_plain(v) for v in values] if plain else values
    values = column.to_pylist()
    if plain and not any(test(column.type) for test in _PLAIN_TYPES):
        return [_plain(v) for v in values]  # timestamps, lists, structs: as text
    return values


def _table_rows(table: pa.Table, url_col: str, caption_col: str) -> Iterator[tuple]:
    urls = _values(_column(table, url_col), plain=False)
    captions = (_values(_column(table, caption_col), plain=False) if caption_col in _names(table)
                else [None] * len(urls))
    names = [c for c in _names(table) if c not in (url_col, caption_col)]
    extras = zip(*(_values(table.column(c), plain=True) for c in names)) if names else None
    for index, (url, caption) in enumerate(zip(urls, captions)):
        extra = tuple(zip(names, next(extras))) if extras is not None else ()
        yield index, url, caption, extra


def _text_columns(url_col: str, caption_col: str, uid_col: str) -> dict:
    """The CSV columns read as text whatever they look like (a uid "00...01" is not the number 1)."""
    return {url_col: pa.string(), caption_col: pa.string(), **({uid_col: pa.string()} if uid_col else {})}


def _read_csv(data: bytes, fmt: str, url_col: str, caption_col: str, uid_col: str) -> tuple[pa.Table, list]:
    """(the table, [(line number, text, expected, actual)] of the lines pyarrow skipped as
    malformed). ``data`` is valid UTF-8; the URL, caption and uid columns are read as text (a
    caption "1.50" must not become the float 1.5, nor a uid "00...01" the integer 1)."""
    skipped: list = []

    def invalid_row(row) -> str:
        skipped.append((row.number, row.text, row.expected_columns, row.actual_columns))
        return "skip"

    parse = pacsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",", newlines_in_values=True,
                               invalid_row_handler=invalid_row)
    convert = pacsv.ConvertOptions(strings_can_be_null=False, column_types=_text_columns(url_col, caption_col, uid_col))
    read = pacsv.ReadOptions(use_threads=False, block_size=_CSV_BLOCK_BYTES)
    try:
        return pacsv.read_csv(io.BytesIO(data), read_options=read, parse_options=parse,
                              convert_options=convert), skipped
    except pa.ArrowInvalid as exc:
        raise Unreadable(f"cannot read as {fmt}: {exc}"[:200]) from None


def _valid_utf8(data: bytes) -> bool:
    """Checked by Arrow in C, without a Python copy of the text."""
    offsets = pa.py_buffer(struct.pack("<qq", 0, len(data)))
    whole = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(data)])
    try:
        whole.cast(pa.large_string())
    except pa.ArrowInvalid:
        return False
    return True


def _marked(rows: Iterator[tuple]) -> Iterator[tuple]:
    """Rows of a repaired file: a URL with U+FFFD had bytes that were not UTF-8 (bad_encoding)."""
    for index, url, caption, extra in rows:
        if isinstance(url, str) and _REPLACED in url:
            url = url.encode("utf-8").replace(_REPLACED.encode("utf-8"), b"\xff")
        yield index, url, caption, extra


def _csv_rows(source: str, path: str, data: bytes, fmt: str, url_col: str, caption_col: str,
              max_chars: int, uid_col: str) -> Iterator[AltPair | Rejection]:
    if data.startswith(tuple(bom for bom, _ in _OTHER_BOMS)):  # Excel's "Unicode text" is UTF-16
        data = _text(data).encode("utf-8", errors="surrogateescape")
    if not data.strip():
        return  # an empty list: no rows, nothing to account for
    # Bytes that are not UTF-8 are replaced before pyarrow sees them: it would type their column
    # as binary, fail on a column name, and fail the whole file on a malformed line holding one.
    repaired = not _valid_utf8(data)
    if repaired:
        data = data.decode("utf-8", errors="replace").encode("utf-8")
    table, skipped = _read_csv(data, fmt, url_col, caption_col, uid_col)
    _column(table, url_col)  # a file without the URL column is unreadable before any row comes out
    rows = _table_rows(table, url_col, caption_col)
    yield from _pairs(source, _marked(rows) if repaired else rows, max_chars, uid_col)
    for k, (line, text, expected, actual) in enumerate(skipped):
        index = -1 - line if line is not None else -1_000_000_000 - k
        yield _bad_row(source, path, index, f"line {line}: {actual} fields, expected {expected}: {text[:100]!r}")


def _parquet_rows(source: str, data: bytes, url_col: str, caption_col: str, max_chars: int, uid_col: str):
    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError) as exc:
        raise Unreadable(f"cannot read as parquet: {exc}"[:200]) from None
    _column(table, url_col)
    yield from _pairs(source, _table_rows(table, url_col, caption_col), max_chars, uid_col)


# ---- JSON, JSONL, TXT ---------------------------------------------------------------------------

def _text(data: bytes) -> str:
    """Text of a JSON/JSONL/TXT file: UTF-8 (BOM stripped; a UTF-16/32 BOM names its encoding);
    bytes that are not UTF-8 become lone surrogates, which the value policy then handles."""
    for bom, encoding in _OTHER_BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="surrogateescape")
    return data.removeprefix(codecs.BOM_UTF8).decode("utf-8", errors="surrogateescape")


def _record(obj, url_col: str, caption_col: str):
    extra = tuple((_fix_text(k), _plain(v)) for k, v in obj.items() if k not in (url_col, caption_col))
    return obj.get(url_col), obj.get(caption_col), extra


def _json_items(source: str, path: str, items: Iterable[tuple], url_col: str, caption_col: str, max_chars: int,
                uid_col: str):
    """(index, parsed value or an error text) -> pairs, and ``extract.bad_row`` for non-objects."""
    for index, obj in items:
        if isinstance(obj, dict) and url_col not in obj:
            pair = AltPair(key=make_key(source, index), page_url="", image_url="", caption="")
            fields = _fix_text(", ".join(obj))[:100]
            yield _rejected(pair, DropReason.EXTRACT_BAD_URL, f"row {index}: no {url_col!r} field (fields: {fields})")
        elif isinstance(obj, dict):
            yield from _pairs(source, [(index, *_record(obj, url_col, caption_col))], max_chars, uid_col)
        elif isinstance(obj, _JsonError):
            yield _bad_row(source, path, index, f"row {index}: not JSON: {obj}")
        else:
            yield _bad_row(source, path, index, f"row {index}: a JSON {_json_type(obj)}, not an object")


class _JsonError(str):
    """The parse error of one JSONL line (a value, so that the line is a rejection)."""


def _json_type(obj) -> str:
    return {type(None): "null", bool: "boolean", int: "number", float: "number", str: "string",
            list: "array", dict: "object"}.get(type(obj), type(obj).__name__)


def _loads(text: str):
    try:
        return json.loads(text)
    except RecursionError:  # "[[[[..." nested past the interpreter's limit
        return _JsonError("nested too deeply")
    except ValueError as exc:  # JSONDecodeError, and int() of a number past 4,300 digits
        return _JsonError(str(exc)[:120])


def _json_rows(source: str, path: str, data: bytes, url_col: str, caption_col: str, max_chars: int, uid_col: str):
    doc = _loads(_text(data))
    if isinstance(doc, _JsonError):
        raise Unreadable(f"cannot read as json: {doc}")
    if not isinstance(doc, list):
        raise Unreadable(f"a JSON {_json_type(doc)}, expected an array of objects")
    yield from _json_items(source, path, enumerate(doc), url_col, caption_col, max_chars, uid_col)


def _jsonl_rows(source: str, path: str, data: bytes, url_col: str, caption_col: str, max_chars: int, uid_col: str):
    # "\n" only: str.splitlines would also split inside strings at U+2028, U+0085, ...
    lines = (line for line in _text(data).split("\n") if line.strip())
    yield from _json_items(source, path, ((i, _loads(line)) for i, line in enumerate(lines)),
                           url_col, caption_col, max_chars, uid_col)


def _txt_rows(source: str, data: bytes, max_chars: int):
    urls = (line.strip() for line in _text(data).splitlines() if line.strip())
    yield from _pairs(source, ((i, url, None, ()) for i, url in enumerate(urls)), max_chars)


def file_rows(fmt: str, data: bytes, source: str, path: str, url_col: str, caption_col: str,
              max_chars: int, uid_col: str = UID_COL) -> Iterator[AltPair | Rejection]:
    """Every row of one list file's bytes, as a pair or a rejection (raises ``Unreadable``).
    ``uid_col`` "" reads no uid (the column, if any, stays in ``extra``)."""
    if fmt == "parquet":
        return _parquet_rows(source, data, url_col, caption_col, max_chars, uid_col)
    if fmt in ("csv", "tsv"):
        return _csv_rows(source, path, data, fmt, url_col, caption_col, max_chars, uid_col)
    if fmt == "json":
        return _json_rows(source, path, data, url_col, caption_col, max_chars, uid_col)
    if fmt == "jsonl":
        return _jsonl_rows(source, path, data, url_col, caption_col, max_chars, uid_col)
    return _txt_rows(source, data, max_chars)
