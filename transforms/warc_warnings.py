"""warcio's warnings, counted per archive file instead of written to stderr (no Beam import).

Input: nothing; ``counting(counter)`` is a context manager around warcio calls.
Output: ``counter[kind] += 1`` for each warning warcio gives while the calling thread
is inside it, and nothing on stderr:

- ``content_length_mismatch``: a record not followed by its blank lines (warcio:
  "Record not followed by newline, perhaps Content-Length is invalid");
- ``bad_compressed_data``: a gzip member (or a Content-Encoding) that stops decoding
  part way (warcio prints the zlib error and reads nothing more of it);
- ``target_uri_spaces``: a WARC-Target-URI with spaces (warcio logs it and
  percent-encodes them);
- ``other``: anything else warcio writes to stderr;
- and ours (``note``): ``record_cut_short`` (a record whose bytes end before its
  Content-Length: a truncated download or gzip member), ``gzip_not_per_record``.

Why this shape: warcio writes these with ``sys.stderr.write`` inside its readers (and
one with its logger), so a 40,000-record file with a bad habit prints 40,000 lines and
nobody can count them. The ``sys`` its modules see is replaced by a proxy whose
``stderr`` is the current thread's tap when one is open (Beam runs bundles in threads:
a process-wide redirect would mix files up and swallow other threads' output), and
the real ``sys.stderr`` otherwise. Only warcio's modules see the proxy.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import sys
import threading

import warcio.archiveiterator
import warcio.bufferedreaders
import warcio.digestverifyingreader

_KINDS = (("Record not followed by newline", "content_length_mismatch"),
          ("Replacing spaces in invalid WARC-Target-URI", "target_uri_spaces"))
_ZLIB_HINTS = ("Error -", "incorrect header", "invalid ", "decompress")


class _Tap(threading.local):
    counter = None  # a collections.Counter while the thread is inside ``counting``


_tap = _Tap()


def classify(text: str) -> str:
    """The warning kind of one message warcio writes."""
    for marker, kind in _KINDS:
        if marker in text:
            return kind
    if any(hint in text for hint in _ZLIB_HINTS):
        return "bad_compressed_data"
    return "other"


class _TapWriter:
    """A ``stderr`` that counts what is written instead of showing it."""

    def __init__(self, counter: collections.Counter):
        self.counter = counter

    def write(self, text) -> int:
        text = str(text)
        if text.strip():
            self.counter[classify(text)] += 1
        return len(text)

    def flush(self) -> None:
        pass


class _SysProxy:
    """What warcio's modules see as ``sys``: the real module, with a per-thread ``stderr``."""

    def __getattr__(self, name):
        return getattr(sys, name)

    @property
    def stderr(self):
        counter = _tap.counter
        return _TapWriter(counter) if counter is not None else sys.stderr


class _CountingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        counter = _tap.counter
        if counter is None:
            return True
        counter[classify(record.getMessage())] += 1
        return False


def install() -> None:
    """Point warcio's ``sys`` at the proxy and filter its logger (idempotent)."""
    for module in (warcio.archiveiterator, warcio.bufferedreaders, warcio.digestverifyingreader):
        if not isinstance(getattr(module, "sys", None), _SysProxy):
            module.sys = _SysProxy()
    logger = logging.getLogger("warcio.recordloader")
    if not any(isinstance(f, _CountingFilter) for f in logger.filters):
        logger.addFilter(_CountingFilter())


def note(kind: str) -> None:
    """Count a warning of our own (``record_cut_short``, ...) where the thread is counting."""
    counter = _tap.counter
    if counter is not None:
        counter[kind] += 1


@contextlib.contextmanager
def counting(counter: collections.Counter):
    """Count warcio's warnings in this thread into ``counter`` (nests: the inner one wins)."""
    install()
    previous, _tap.counter = _tap.counter, counter
    try:
        yield counter
    finally:
        _tap.counter = previous


install()
