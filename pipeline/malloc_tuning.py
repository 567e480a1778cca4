"""glibc malloc settings for a local run, so memory a stage frees goes back to the OS.

Input: nothing; ``tune_malloc()`` is called once by pipeline/run.py before a local pipeline
starts. Output: the settings applied (``{name: value}``, empty where not glibc or all were set by
the user), via ``mallopt`` for this process and as ``MALLOC_*_`` environment variables for the
SDK worker processes a ``multi_processing`` run starts. Nothing is dropped; a failure to apply
is logged and the run goes on with glibc's defaults.

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
"""

from __future__ import annotations

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
