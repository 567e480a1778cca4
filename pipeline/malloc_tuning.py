"""glibc malloc settings for a local run, so memory a stage frees goes back to the OS.

Input: nothing; pipeline/run.py and pipeline/refilter.py run a local pipeline inside
``with malloc_tuned():``. Output: the settings applied (``{name: value}``, empty where not glibc
or all were set by the user), via ``mallopt`` for this process and as ``MALLOC_*_`` environment
variables for the SDK worker processes a ``multi_processing`` run starts; on exit the variables
go and glibc gets the values its dynamic defaults reach once warm (``RESTORE``), so what runs
next in the process (``make demo``'s trainer) is not slowed. Nothing is dropped; a failure to
apply is logged and the run goes on with glibc's defaults.

Why: the FnApiRunner runs every stage in one process, on many threads (FetchImages has
``fetch.concurrency`` of them), and a stage's shuffle arrives as multi-MB byte strings. With
glibc's defaults each thread gets its own arena (up to 8 per core), and the mmap threshold rises
to 32 MB after the first large block is freed, so later large blocks come from the arenas and,
once freed, stay in the process as free fragments: on bench/memory.py at 40k pairs glibc held
~150 MB freed but not returned by the time ScoreClip started, and the held part grew with the
input. Two arenas, a fixed 128 KB mmap threshold (large blocks are mapped and unmapped whole)
and a 128 KB trim threshold keep ``fordblks`` near zero (measured: 1 MB). glibc reads the same
settings from ``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_``; a
setting the user exported is left as it is. Written by hand: no library exposes ``mallopt``.

Why only around the pipeline: a fixed 128 KB mmap threshold maps and unmaps every large tensor
torch allocates, and the trainer ran at 89 samples/s instead of 137 with it (``make demo``).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import platform

log = logging.getLogger(__name__)

# mallopt parameter numbers (glibc malloc.h) and the values used.
SETTINGS = (
    # (environment variable, mallopt param, value)
    ("MALLOC_ARENA_MAX", -8, 2),  # M_ARENA_MAX
    ("MALLOC_MMAP_THRESHOLD_", -3, 128 * 1024),  # M_MMAP_THRESHOLD (fixed: no dynamic rise)
    ("MALLOC_TRIM_THRESHOLD_", -1, 128 * 1024),  # M_TRIM_THRESHOLD
)
# What the dynamic defaults reach once warm (64-bit glibc): arenas 8 per core (0), the mmap
# threshold's ceiling (32 MB), the trim threshold twice that.
RESTORE = {"MALLOC_ARENA_MAX": 0, "MALLOC_MMAP_THRESHOLD_": 32 * 1024 * 1024,
           "MALLOC_TRIM_THRESHOLD_": 64 * 1024 * 1024}
OPT_OUT = "WIT_MALLOC_TUNING"  # "0": leave glibc's defaults


def _glibc():
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def tune_malloc(environ=os.environ) -> dict:
    """Apply SETTINGS to this process (mallopt) and its future children (environment)."""
    if environ.get(OPT_OUT, "1") == "0":
        return {}
    libc = _glibc()
    if libc is None or not hasattr(libc, "mallopt"):
        return {}
    applied = {}
    for name, param, value in SETTINGS:
        if name in environ:  # the user's own setting: glibc already read it at start
            continue
        if libc.mallopt(ctypes.c_int(param), ctypes.c_int(value)) != 1:
            log.warning("mallopt(%s=%d) failed; glibc's default stays", name, value)
            continue
        environ[name] = str(value)
        applied[name] = value
    if applied:
        log.info("glibc malloc tuned for a long local run (%s=0 to keep the defaults): %s", OPT_OUT, applied)
    return applied


def restore_malloc(applied: dict, environ=os.environ) -> None:
    """Undo ``tune_malloc``'s ``applied`` settings: RESTORE values, the variables removed."""
    libc = _glibc() if applied else None
    for name, param, _value in SETTINGS:
        if name not in applied:
            continue
        environ.pop(name, None)
        if libc is not None:
            libc.mallopt(ctypes.c_int(param), ctypes.c_int(RESTORE[name]))


@contextlib.contextmanager
def malloc_tuned(enabled: bool = True, environ=os.environ):
    """``tune_malloc`` for the ``with`` block (a local pipeline run), ``restore_malloc`` after it."""
    applied = tune_malloc(environ) if enabled else {}
    try:
        yield applied
    finally:
        restore_malloc(applied, environ)
