"""HostShare: one key's part of its host's politeness budget, and the time slices of its spacing.

No Beam import (the HTTP client uses it). Input: a key's ``(index, count)`` among the ``count``
keys a hot host is spread over (transforms/host_keys.py), the host's limits. Output: numbers —
this key's concurrency, the wall-clock start of its next request slot. No drop reasons.

The host's limits hold for the host as a whole, over keys that may run on different workers
which never talk to each other. So the budget is split without coordination:

- **concurrency is dealt out**: of the host's ``C`` (``fetch.per_host_concurrency``), key
  ``index`` gets ``C // count``, the first ``C % count`` keys one more: the shares add up to
  ``C`` exactly (``count`` is at most ``C``, so every key gets at least one);
- **request spacing is time-sliced** by the wall clock. With the host's interval
  ``I = max(fetch.per_host_min_interval_s, robots Crawl-delay) > 0``, time from the Unix epoch
  is cut into slots of ``I + W``, with the start window ``W = max(SLACK * I, MIN_WINDOW_S)``
  (1/8 of the interval, at least 5 ms); key ``index`` owns slots ``n`` with
  ``n % count == index`` and starts at most one request per slot, within its first ``W``
  (a thread that wakes later than that, scheduler jitter, takes the key's next slot). Two starts
  from different slots are then at least ``(I + W) - W = I`` apart, whichever keys and workers
  made them. The host sees at most one start per ``I + W``: a rate 1/9 lower than one client
  alone would use (more for intervals under 40 ms), the price of needing no coordinator. A
  thread that keeps missing its window (an overloaded worker) gives up once it has waited
  ``give_up_s`` (the client's ``max_host_delay_s``: no wait is unbounded).

The wall clock is ``time.time()``: the same in every process of one machine, and within a few
milliseconds across Dataflow workers (NTP). A skew of ``d`` between two workers can bring their
starts to ``I - d`` apart; a host asks for seconds (Crawl-delay), so that is noise. A key runs on
one worker at a time (GroupByKey); a retried bundle may repeat some of its requests.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

SLACK = 0.125  # the start window inside a slot, and the slot's extra length, as a fraction of I
MIN_WINDOW_S = 0.005  # ... and at least this: sleeps overshoot by a millisecond or more on a busy worker


@dataclass(frozen=True)
class HostShare:
    """Key ``index`` of the ``count`` keys a host is spread over (``WHOLE``: the host on one key)."""

    index: int = 0
    count: int = 1

    def concurrency(self, total: int) -> int:
        """This key's part of the host's concurrency ``total`` (the parts add up to ``total``)."""
        total = max(1, total)
        return max(1, total // self.count + (1 if self.index < total % self.count else 0))

    @property
    def whole(self) -> bool:
        return self.count <= 1


WHOLE = HostShare()


def start_window(interval: float) -> float:
    """How late in its slot a request may still start (seconds after the slot begins)."""
    return max(interval * SLACK, MIN_WINDOW_S)


def slot_length(interval: float) -> float:
    """Seconds per time slice of a host with request interval ``interval``: the interval plus
    the start window, so starts in two slots are at least ``interval`` apart."""
    return interval + start_window(interval)


def first_slot(share: HostShare, interval: float, earliest: float, after: int = -1) -> int:
    """The first slot number of ``share`` above ``after`` whose start window is not over at ``earliest``
    (wall-clock seconds). The slot begins at ``slot * slot_length(interval)``."""
    length = slot_length(interval)
    # The earliest slot whose window [n*L, n*L + SLACK*I] has not closed at `earliest`.
    n = max(after + 1, math.ceil((earliest - start_window(interval)) / length))
    return n + (share.index - n) % share.count


_PRUNE_AT = 100_000  # keys remembered by one TimeSlices before the ones in the past are dropped


class TimeSlices:
    """The slots this process has taken, per ``(host, index, count)``; thread-safe.

    ``wait`` sleeps until the start of the key's next free slot and takes it: threads of one key
    in one process get distinct slots, keys on other workers get other slots by construction.
    A thread's wait is at most (its key's requests queued ahead + 1) x ``count`` slots.
    """

    def __init__(self, clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep):
        self.clock, self.sleep = clock, sleep
        self._taken: dict[tuple, tuple[int, float]] = {}  # key -> (last slot taken, end of its window)
        self._lock = threading.Lock()

    def wait(self, host: str, share: HostShare, interval: float, not_before: float = 0.0,
             give_up_s: float = float("inf")) -> Optional[float]:
        """Sleep until ``share``'s next free slot of ``host`` begins (not before the wall-clock
        ``not_before``, a Retry-After); the slot's start time (wall clock), or None when every
        slot's window was missed for ``give_up_s`` seconds."""
        key = (host, share.index, share.count)
        length, window = slot_length(interval), start_window(interval)
        deadline = self.clock() + give_up_s
        while True:
            with self._lock:
                now = self.clock()
                after = self._taken.get(key, (-1, 0.0))[0]
                slot = first_slot(share, interval, max(now, not_before), after)
                start = slot * length
                if len(self._taken) >= _PRUNE_AT:
                    self._taken = {k: v for k, v in self._taken.items() if v[1] >= now}
                self._taken[key] = (slot, start + window)
            delay = start - self.clock()
            if delay > 0:
                self.sleep(delay)
            woke = self.clock()
            if woke <= start + window:
                return start
            if woke > deadline:
                return None
            # Woke after the slot's start window (scheduler jitter): a start now could come
            # closer than the interval to the next key's, so this slot is lost; take the next.
