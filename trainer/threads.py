"""How many CPU threads torch should use here: the cores this process may use that are not busy.

Input: the process's CPU affinity, the cgroup CPU quota, and a short sample of /proc/stat.
Output: a thread count (at least 1). No drop reasons.

Why: torch's default is one intra-op thread per core. When another process keeps one of two
cores busy, the two threads wait at every parallel region for the one that shares its core, and
a step takes longer than with one thread (measured on 2 cores with a busy loop, the demo's tiny
model at batch 64: 1 thread 1.59 steps/s, 2 threads 0.87; idle: 1 thread 1.59, 2 threads 2.53).
So the count is the usable cores minus the ones other work keeps busy, sampled when training
starts. ``OMP_NUM_THREADS`` or ``WIT_TORCH_THREADS``, when set, win.
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Callable, Optional

logger = logging.getLogger(__name__)


def usable_cores(cpu_max: str = "/sys/fs/cgroup/cpu.max") -> int:
    """Cores this process may run on: its affinity, capped by a cgroup v2 CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        with open(cpu_max, encoding="ascii") as fh:
            quota, period = fh.read().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def _cpu_times(stat_path: str) -> Optional[tuple[int, int]]:
    """(busy, total) jiffies over all CPUs from the first line of /proc/stat, or None."""
    try:
        with open(stat_path, encoding="ascii") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [int(v) for v in fields[1:] if v.isdigit()]
    if len(values) < 5:
        return None
    idle = values[3] + values[4]  # idle + iowait
    return sum(values[:8]) - idle, sum(values[:8])


def busy_cores(sample_s: float = 0.3, stat_path: str = "/proc/stat",
               sleep: Callable[[float], None] = time.sleep) -> float:
    """Cores' worth of CPU time other processes used over ``sample_s`` (this one idles meanwhile)."""
    first = _cpu_times(stat_path)
    sleep(sample_s)
    second = _cpu_times(stat_path)
    if first is None or second is None or second[1] <= first[1]:
        return 0.0
    cpus = os.cpu_count() or 1
    return cpus * (second[0] - first[0]) / (second[1] - first[1])


def pick_threads(cores: Optional[int] = None, busy: Optional[float] = None) -> int:
    """Threads for torch: the environment's choice, else usable cores minus busy ones (>= 1)."""
    for name in ("WIT_TORCH_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    cores = usable_cores() if cores is None else cores
    if cores <= 1:
        return 1
    busy = busy_cores() if busy is None else busy
    return max(1, min(cores, cores - int(round(busy))))


def set_torch_threads() -> int:
    """Set torch's intra-op threads by ``pick_threads`` (CPU work only) and return the count."""
    import torch

    threads = pick_threads()
    torch.set_num_threads(threads)
    logger.info("torch threads: %d (usable cores %d)", threads, usable_cores())
    return threads
