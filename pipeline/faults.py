"""Internal errors: an unexpected exception met by one item, as a bounded value.

Input: an exception caught around one item (a download, a page, a list row, a
record checked by a rule) and the reason code of its stage
(``<stage>.internal_error``). Output: the ``detail`` of that item's rejection or
page failure — exception type, message (cut) and where: the innermost frame
inside our packages, as ``file:line in function`` — at most
``records.DETAIL_MAX_CHARS`` characters.

Why: a bug that one item out of 100M trips must cost that item, not the run
(DESIGN.md §4). The guards that call ``describe`` catch ``Exception`` only, per
item: ``KeyboardInterrupt`` and ``SystemExit`` still stop the run.

Each occurrence is logged at WARNING. The first ``TRACEBACKS_PER_REASON`` of a
reason in a process carry the traceback (bounded); later ones one line each, and
past ``LINES_PER_REASON`` only every thousandth, so a bug every item trips cannot
write gigabytes of logs. Counting is the caller's: the rejection or page failure
goes through the stage's usual routing, which bumps the Beam counter named after
the reason (``metrics.inc_reason``).
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import traceback

from pipeline.records import DETAIL_MAX_CHARS, DropReason

log = logging.getLogger(__name__)

INTERNAL_SUFFIX = ".internal_error"
TRACEBACKS_PER_REASON = 5
LINES_PER_REASON = 100
TRACEBACK_MAX_CHARS = 4000
_MESSAGE_MAX_CHARS = 160

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_OUR_PACKAGES = tuple(os.path.join(_ROOT, p) + os.sep for p in ("pipeline", "transforms", "filters", "trainer"))
_THIS_FILE = os.path.abspath(__file__)

_seen: collections.Counter = collections.Counter()
_seen_lock = threading.Lock()


def is_internal(reason: str) -> bool:
    """Whether a reason code (str or DropReason) names an internal error."""
    return str(reason).endswith(INTERNAL_SUFFIX)


def _ours(filename: str) -> bool:
    path = os.path.abspath(filename)
    return path.startswith(_OUR_PACKAGES) and path != _THIS_FILE


def where(exc: BaseException) -> str:
    """``pkg/module.py:line in function`` of the innermost frame in our packages (else the innermost)."""
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ is not None else []
    if not frames:
        return "?"
    ours = [f for f in frames if _ours(f.filename)]
    frame = (ours or frames)[-1]
    name = os.path.relpath(frame.filename, _ROOT) if ours else os.path.basename(frame.filename)
    return f"{name}:{frame.lineno} in {frame.name}"


def _type_name(exc: BaseException) -> str:
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # an exception whose __str__ raises: still one bounded detail
        return "<unprintable message>"
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_MAX_CHARS else text[: _MESSAGE_MAX_CHARS - 1] + "…"


def describe(exc: BaseException, limit: int = DETAIL_MAX_CHARS) -> str:
    """``Type: message @ where``, at most ``limit`` characters (the message is cut first)."""
    at = f" @ {where(exc)}"
    head = _type_name(exc)
    message = _message(exc)
    text = f"{head}: {message}" if message else head
    room = max(0, limit - len(at))
    if len(text) > room:
        text = text[: max(0, room - 1)] + "…"
    return (text + at)[:limit]


def internal_error(reason: DropReason, exc: BaseException, item: str) -> str:
    """Log one internal error of ``item`` (a URL, a key, a row) and return its detail."""
    detail = describe(exc)
    with _seen_lock:
        _seen[reason.value] += 1
        n = _seen[reason.value]
    label = (item or "")[:200]
    if n <= TRACEBACKS_PER_REASON:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        if len(tb) > TRACEBACK_MAX_CHARS:
            tb = "…" + tb[-TRACEBACK_MAX_CHARS:]
        log.warning("%s on %s (%d so far in this process): %s\n%s", reason.value, label, n, detail, tb)
    elif n <= LINES_PER_REASON or n % 1000 == 0:
        log.warning("%s on %s (%d so far in this process): %s", reason.value, label, n, detail)
    return detail


def seen_counts() -> dict:
    """Internal errors this process logged, by reason (tests, diagnostics)."""
    with _seen_lock:
        return dict(_seen)

