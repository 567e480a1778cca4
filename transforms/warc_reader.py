"""One archive file (WARC or ARC, plain or gzipped) to tally kinds and outputs, with nothing fatal
(no Beam import; transforms/warc.py runs it per file, transforms/warc_records.py reads each record).

Input: a seekable binary file object and its path (for the failure details). Output of
``read_warc``: ``(tally kind, output or None)`` for every record (warc_records.py), and
for each place the file cannot be read a ``PageFailure``: ``warc.unreadable`` (kind
``unreadable``), whose detail names the file, the byte offset of the record warcio
failed on (or where reading stopped), the error, and where reading resumed; or
``warc.internal_error`` (kind ``internal_error``) for an unexpected exception.

What it handles that warcio alone does not:
- the format is sniffed from the first bytes, not the name: a WARC starts ``WARC/``,
  an ARC with a URL (``filedesc://``) and is read in warcio's ARC-to-WARC mode; each
  strictly (a WARC read in mixed mode takes any five-word line for an ARC header);
- a whole-file gzip (``gzip x.warc``: one member around many records, which warcio
  refuses after the first record) is read again through a decompressor, past the
  records already read (warning ``gzip_not_per_record``);
- after a record that does not parse, reading resumes at the next record that starts
  cleanly (a gzip member that decodes to ``WARC/1.x`` or an ARC header line, or a
  ``WARC/1.x`` line), at most ``MAX_RESUMES`` times a file: one bad byte costs the
  records around it, not the rest of a 1 GB file;
- a gzip member that stops decoding part way, or a file that ends inside a record's
  headers, is reported (warcio prints the first and goes quiet on both: every later
  record was lost silently);
- an unexpected exception on one record becomes that record's ``warc.internal_error``
  and reading goes on (``isolated_outputs``);
- warcio's warnings are counted into the caller's counter, not printed
  (transforms/warc_warnings.py).
"""

from __future__ import annotations

import collections
import gzip
import logging
import os
import re
import traceback
import zlib
from typing import Iterator, Optional

from warcio.archiveiterator import ARCIterator, WARCIterator
from warcio.bufferedreaders import DecompressingBufferedReader
from warcio.exceptions import ArchiveLoadFailed
from warcio.statusandheaders import StatusAndHeadersParserException
from warcio.utils import BUFF_SIZE

from pipeline import faults
from pipeline.records import DETAIL_MAX_CHARS, DropReason, PageFailure
from transforms import warc_records, warc_warnings
from transforms.extract_alt_text import ExtractSpec
from transforms.warc_records import WarcLimits

log = logging.getLogger(__name__)

_UNREADABLE = (ArchiveLoadFailed, StatusAndHeadersParserException, zlib.error, EOFError, OSError, ValueError)
_URL_START = re.compile(rb"[A-Za-z][A-Za-z0-9+.-]{0,15}://")
_HEAD_BYTES = 4096
_SCAN_BYTES = 1 << 20
_WARC_START = re.compile(rb"WARC/1\.[01]\r?\n")
_ARC_HEADER = re.compile(rb"[A-Za-z][A-Za-z0-9+.-]{0,15}://\S* \S+ [0-9]{8,14} \S* [0-9]+\r?\n")
MAX_RESUMES = 1000  # resumptions after unreadable records, per file: past it the rest is skipped
_LOGGED_PER_FILE = 5  # unreadable places logged per file (all are counted and in the page funnel)
_END = object()


def file_name(path: str) -> str:
    """A path's last part, bounded (for details)."""
    return path.rstrip("/").rsplit("/", 1)[-1][:100]


def _seekable(fileobj) -> bool:
    try:
        return bool(fileobj.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _head(fileobj) -> tuple[bytes, bool]:
    """(the first bytes of a file, decompressed when it is gzip; is it gzip?); the file is left where it was."""
    start = fileobj.tell()
    raw = fileobj.read(_HEAD_BYTES)
    fileobj.seek(start)
    if raw[:2] == b"\x1f\x8b":
        try:
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw, 256), True
        except zlib.error:
            return b"", True
    return raw[:256], False


def _ends_inside_record(fileobj, offset: int) -> bool:
    """Is there more than blank lines from ``offset`` (where warcio says the next record starts)
    to the end? warcio ends quietly when a file stops inside a record's headers or gzip member."""
    here = fileobj.tell()
    try:
        fileobj.seek(offset)
        return bool(fileobj.read(_HEAD_BYTES).strip())
    finally:
        fileobj.seek(here)


def is_arc(head: bytes) -> bool:
    """Is this (decompressed) file start an ARC? An ARC starts with a URL (its ``filedesc://``
    version block, or a record's own URL); a WARC with ``WARC/``; anything else is read as WARC."""
    return _URL_START.match(head.lstrip()) is not None


class _WatchedReader(DecompressingBufferedReader):
    """warcio's file reader, noting a gzip member that stops decoding part way: warcio prints
    the zlib error and reads on as if the file ended there, losing every later record."""

    broken = False

    def _decompress(self, data):
        if self.decompressor is not None and data and self.num_block_read:
            try:
                return self.decompressor.decompress(data)
            except zlib.error:
                self.broken = True
                warc_warnings.note("bad_compressed_data")
                return b""
        return super()._decompress(data)


def _iterator(fileobj, arc: bool):
    # Strict per format: a WARC read in mixed mode would take any five-word line for an ARC header.
    iterator = ARCIterator(fileobj, arc2warc=True) if arc else WARCIterator(fileobj)
    iterator.reader = _WatchedReader(iterator.fh, block_size=BUFF_SIZE)  # nothing is read before iterating
    return iterator


def _broken(iterator) -> bool:
    return bool(getattr(iterator.reader, "broken", False))


def _next_record(records, warnings: collections.Counter):
    """The next record, ``_END``, or the exception reading it raised (the caller classifies it)."""
    with warc_warnings.counting(warnings):
        try:
            return next(records)
        except StopIteration:
            return _END
        except Exception as exc:  # noqa: BLE001 — unreadable, or a bug: one failure for the file either way
            return exc


def _offset(iterator) -> int:
    """Byte offset of the record being read: warcio's, or where reading stopped when warcio's is
    not a file position (it mixes compressed and decompressed counts on a whole-file gzip)."""
    try:
        stopped = iterator.fh.tell()
    except (OSError, ValueError, AttributeError):
        return max(0, iterator.offset)
    return iterator.offset if 0 <= iterator.offset <= stopped else stopped


def is_unreadable(exc: BaseException) -> bool:
    """A record warcio cannot parse: its parse errors, I/O and decoding errors, and any exception
    raised inside warcio itself (a response record without WARC-Target-URI makes its loader call
    ``None.startswith``): malformed input, not a bug of ours."""
    return isinstance(exc, _UNREADABLE) or _raised_in_warcio(exc)


def _raised_in_warcio(exc: BaseException) -> bool:
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ is not None else []
    return bool(frames) and f"{os.sep}warcio{os.sep}" in frames[-1].filename


def _file_failure(exc: Exception, path: str, offset: str, resume: Optional[int]) -> tuple:
    """(kind, PageFailure): ``<file>: offset <n>: <skipped to …>: <error>`` (the error is cut first)."""
    after = "the rest of the file skipped" if resume is None else f"skipped to offset {resume}"
    detail = f"{file_name(path)}: offset {offset}: {after}: "
    if is_unreadable(exc):
        message = " ".join(str(exc).split())[:120]
        detail += f"{type(exc).__name__}: {message!r}"
        return "unreadable", PageFailure(path, DropReason.WARC_UNREADABLE, detail[:DETAIL_MAX_CHARS])
    detail += faults.internal_error(DropReason.WARC_INTERNAL, exc, path)
    return "internal_error", PageFailure(path, DropReason.WARC_INTERNAL, detail[:DETAIL_MAX_CHARS])


def isolated_outputs(record, limits: WarcLimits, spec: ExtractSpec, warnings: collections.Counter) -> list:
    """record_outputs of one record, as a list; an exception becomes that record's one failure (its
    partial outputs dropped, so accounting holds) and reading goes on: ``warc.unreadable`` when
    raised inside warcio (its readers on a malformed payload), else ``warc.internal_error``."""
    try:
        with warc_warnings.counting(warnings):
            return list(warc_records.record_outputs(record, limits, spec))
    except Exception as exc:  # noqa: BLE001 — one record's bug must not end the file (DESIGN.md §4)
        try:
            uri = (record.rec_headers.get_header("WARC-Target-URI") or "")[:2000]
        except Exception:  # noqa: BLE001 — headers too broken to name the record
            uri = ""
        if _raised_in_warcio(exc):
            return [("unreadable", PageFailure(uri, DropReason.WARC_UNREADABLE, faults.describe(exc)))]
        detail = faults.internal_error(DropReason.WARC_INTERNAL, exc, uri)
        return [("internal_error", PageFailure(uri, DropReason.WARC_INTERNAL, detail))]


def _whole_file_gzip(exc: Exception) -> bool:
    return isinstance(exc, ArchiveLoadFailed) and "non-chunked gzip" in str(exc)


def _starts_record(fileobj, at: int, gz: bool, arc: bool) -> bool:
    """Does a record (a gzip member holding one) start cleanly at byte ``at``?"""
    fileobj.seek(at)
    head = fileobj.read(_HEAD_BYTES)
    if gz:
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 64)
        except zlib.error:
            return False
    return (_ARC_HEADER if arc else _WARC_START).match(head) is not None


def find_next_record(fileobj, after: int, gz: bool, arc: bool) -> Optional[int]:
    """Offset of the first clean record start after byte ``after`` (None: none before the end).
    Gzip members start ``1f 8b 08``; a plain WARC record with a ``WARC/1.x`` line."""
    magic = b"\x1f\x8b\x08" if gz else (b"\n" if arc else b"\nWARC/1.")
    pos = after + 1
    while True:
        fileobj.seek(pos)
        chunk = fileobj.read(_SCAN_BYTES)
        found = chunk.find(magic)
        while found >= 0:
            at = pos + found + (0 if gz else 1)
            if _starts_record(fileobj, at, gz, arc):
                return at
            found = chunk.find(magic, found + 1)
        if len(chunk) < _SCAN_BYTES:
            return None
        pos += len(chunk) - len(magic) + 1


class _FileRecords:
    """Each record of one file once, or the failures met on the way: a whole-file gzip is read
    again through a decompressor; after a record that does not parse, reading resumes at the
    next record that starts cleanly (``MAX_RESUMES`` times a file at most)."""

    def __init__(self, fileobj, path: str, warnings: collections.Counter):
        self.fileobj, self.path, self.warnings = fileobj, path, warnings
        self.seekable = _seekable(fileobj)
        self.start = fileobj.tell() if self.seekable else 0
        head, self.gz = _head(fileobj) if self.seekable else (b"WARC/", False)
        self.arc = is_arc(head)
        self.where, self.resumes = "", 0

    def _open(self, at: int, stream=None):
        if stream is None and self.seekable:
            self.fileobj.seek(at)
        self.iterator = _iterator(stream or self.fileobj, self.arc)
        self.records = iter(self.iterator)

    def _next(self, quiet: bool):
        if _broken(self.iterator):
            return ArchiveLoadFailed("a gzip member stops decoding part way")
        got = _next_record(self.records, collections.Counter() if quiet else self.warnings)
        if got is _END and self.seekable and not self.where and _ends_inside_record(self.fileobj, _offset(self.iterator)):
            return ArchiveLoadFailed("the file ends inside a record (a truncated file?)")
        return got

    def _failure(self, exc: Exception) -> tuple[tuple, bool]:
        """(the failure, whether reading resumes after it)."""
        offset = _offset(self.iterator)
        resume = None
        if self.seekable and not self.where and self.resumes < MAX_RESUMES:
            resume = find_next_record(self.fileobj, offset, self.gz, self.arc)
        failure = _file_failure(exc, self.path, f"{self.where}{offset}", resume)
        if failure[0] == "unreadable" and (self.resumes < _LOGGED_PER_FILE or resume is None):
            log.warning("%s: %s", self.path, failure[1].detail)
        if resume is not None:
            self.resumes += 1
            self._open(resume)
        return failure, resume is not None

    def __iter__(self):
        """(record, None) for each record and (None, (kind, PageFailure)) for each failure."""
        self._open(self.start)
        done = skip = 0
        while True:
            got = self._next(quiet=skip > 0)
            if got is _END:
                return
            if isinstance(got, Exception):
                if _whole_file_gzip(got) and self.seekable and not self.where:
                    # One gzip stream around many records: read it all again decompressed, past what was read.
                    self.warnings["gzip_not_per_record"] += 1
                    self.fileobj.seek(self.start)
                    self._open(self.start, gzip.GzipFile(fileobj=self.fileobj, mode="rb"))
                    self.where, skip, done = "uncompressed ", done, 0
                    continue
                failure, resumed = self._failure(got)
                yield None, failure
                if not resumed:
                    return
            elif skip:
                skip -= 1
            else:
                done += 1
                yield got, None


def read_warc(fileobj, path: str, limits: WarcLimits, spec: ExtractSpec,
              warnings: Optional[collections.Counter] = None) -> Iterator[tuple]:
    """(tally kind or None, output or None) for every record of one archive file; warcio's warnings
    are counted into ``warnings``. No exception escapes. Sniffing the format, re-reading a
    whole-file gzip and resuming after an unreadable record need a seekable file (Beam's
    FileSystems.open gives one); any other stream is read as a WARC, up to its first failure."""
    warnings = collections.Counter() if warnings is None else warnings
    try:
        for record, failure in _FileRecords(fileobj, path, warnings):
            if failure is not None:
                yield failure
            else:
                yield from isolated_outputs(record, limits, spec, warnings)
    except Exception as exc:  # noqa: BLE001 — sniffing, seeking or rewinding failed: one more failure for the file
        if is_unreadable(exc):
            kind, reason, why = "unreadable", DropReason.WARC_UNREADABLE, faults.describe(exc)
        else:
            kind, reason = "internal_error", DropReason.WARC_INTERNAL
            why = faults.internal_error(reason, exc, path)
        yield kind, PageFailure(path, reason, f"{file_name(path)}: {why}"[:DETAIL_MAX_CHARS])


