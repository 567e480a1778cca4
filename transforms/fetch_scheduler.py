"""HostScheduler: concurrent work over many keys, with a per-key cap and a bounded buffer (no Beam import).

Input: ``(key, iterable of items)`` groups (a key is a host, or one of a hot host's keys
``(host, index)``), each with its cap, and a function to run on each item (a download, a
download plus resize). Output: the function's results, in completion order. At most ``total``
calls run at once and at most the key's ``limit`` (default ``per_host``) for any one key; keys
take turns, so one big key cannot starve the rest.

Buffer: ``add`` reads a group's iterable into a buffer of at most ``buffer`` items not yet
started (shared by all keys), starting what the caps allow as it goes. The caller (a DoFn's
``process``) waits for completions only while the buffer is full and the group's iterable is not
yet read (``unread``), then returns while the items run: several keys run at once in one worker,
up to ``total``, even when each key's cap is 1. Memory: at most ``buffer`` items waiting, plus
``total`` items running or finished and not yet collected (a call that finishes starts nothing
by itself: the caller's ``ready``/``wait_one``/``drain`` start the next). A key larger than the
buffer holds its caller until all but ``buffer`` of its items have started; the keys buffered
before it keep running meanwhile.

An item whose call raises an ``Exception`` costs that item only: with ``on_error`` the
scheduler hands ``(item, exc)`` to it (in the caller's thread) and yields what it returns in
place of the result, and the key's in-flight count is released as for any finished call.
Without ``on_error`` the exception is re-raised in the caller's thread. ``BaseException``
(KeyboardInterrupt, SystemExit) is always re-raised.

Why by hand: a thread pool gives the concurrency (downloads wait on sockets, Pillow releases the
GIL while it decodes and resizes) but has no notion of a per-host limit; politeness needs one.
Spacing between requests to a host (robots Crawl-delay) is the HTTP client's job.
"""

from __future__ import annotations

import queue
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Hashable, Iterable, Iterator, Optional

DEFAULT_BUFFER = 4096  # items read ahead per worker: a few thousand AltPairs, about a MB


class _Lane:
    """One key's items: the iterable not yet read, the buffered ones, how many run."""

    __slots__ = ("source", "waiting", "limit", "running")

    def __init__(self, source: Iterator, limit: int):
        self.source: Optional[Iterator] = source
        self.waiting: deque = deque()
        self.limit = limit
        self.running = 0


class HostScheduler:
    """Feed key groups with ``add``; collect results with ``ready``/``wait_one``/``drain``."""

    def __init__(self, fn: Callable[[Any], Any], total: int, per_host: int,
                 on_error: Optional[Callable[[Any, Exception], Any]] = None, buffer: int = DEFAULT_BUFFER):
        self.fn = fn
        self.on_error = on_error
        self.total = max(1, total)
        self.per_host = max(1, per_host)
        self.buffer = max(1, buffer)
        self.pool = ThreadPoolExecutor(max_workers=self.total, thread_name_prefix="wit-fetch")
        self._lanes: "OrderedDict[Hashable, _Lane]" = OrderedDict()  # round-robin order
        self._reading: "OrderedDict[Hashable, _Lane]" = OrderedDict()  # lanes whose iterable is unread
        self._buffered = 0
        self._running = 0
        self._done: "queue.Queue[tuple[Hashable, Any]]" = queue.Queue()

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def pending(self, key: Hashable) -> bool:
        """Whether ``key`` still has items not yet started (buffered or not yet read)."""
        lane = self._lanes.get(key)
        return lane is not None and (lane.source is not None or bool(lane.waiting))

    def unread(self, key: Hashable) -> bool:
        """Whether ``key``'s iterable still has items not yet read into the buffer."""
        lane = self._lanes.get(key)
        return lane is not None and lane.source is not None

    @property
    def buffered(self) -> int:
        """Items read and not yet started."""
        return self._buffered

    @property
    def idle(self) -> bool:
        return self._running == 0 and not self._lanes

    def add(self, key: Hashable, items: Iterable[Any], limit: Optional[int] = None) -> None:
        """Queue a group for ``key`` (at most ``limit`` of its items at once, default ``per_host``);
        a second group for a key queues behind the first."""
        limit = self.per_host if limit is None else max(1, limit)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(iter(items), limit)
        else:
            lane.source = iter(items) if lane.source is None else _chain(lane.source, iter(items))
            lane.limit = limit
        self._reading[key] = lane
        self._dispatch()

    def _fill(self) -> None:
        """Read unread iterables into the buffer until it is full."""
        for key in list(self._reading):
            lane = self._reading[key]
            while self._buffered < self.buffer:
                try:
                    lane.waiting.append(next(lane.source))
                except StopIteration:
                    lane.source = None
                    del self._reading[key]
                    self._forget_if_done(key, lane)
                    break
                self._buffered += 1
            if self._buffered >= self.buffer:
                return

    def _forget_if_done(self, key: Hashable, lane: _Lane) -> None:
        if lane.source is None and not lane.waiting and not lane.running:
            del self._lanes[key]

    def _start_round(self) -> int:
        """One round robin over the keys: start one buffered item of each key below its cap."""
        started = 0
        if self._running >= self.total:
            return started
        for key in list(self._lanes):
            if self._running >= self.total:
                break
            lane = self._lanes[key]
            if not lane.waiting or lane.running >= lane.limit:
                continue
            item = lane.waiting.popleft()
            self._buffered -= 1
            lane.running += 1
            self._running += 1
            self.pool.submit(self._run, key, item)
            started += 1
            self._lanes.move_to_end(key)  # round robin: this key goes to the back
        return started

    def _dispatch(self) -> None:
        """Start work until the global cap is reached or every key is at its cap or empty."""
        while True:
            self._fill()
            if not self._start_round():
                break

    def _run(self, key: Hashable, item: Any) -> None:
        try:
            result = self.fn(item)
        except Exception as exc:  # one item's failure: handed to the caller's thread with the item
            self._done.put((key, _Failed(item, exc)))
            return
        except BaseException as exc:  # handed to the caller's thread, re-raised there
            self._done.put((key, _Raised(exc)))
            return
        self._done.put((key, result))

    def _failed(self, failed: "_Failed") -> Any:
        """The stand-in result of an item whose call raised (on_error's), or the exception again."""
        if self.on_error is None:
            raise failed.exc
        return self.on_error(failed.item, failed.exc)

    def _collect(self, block: bool):
        try:
            key, result = self._done.get(block=block)
        except queue.Empty:
            return False, None
        self._running -= 1
        lane = self._lanes[key]
        lane.running -= 1
        self._forget_if_done(key, lane)
        self._dispatch()
        if isinstance(result, _Raised):
            raise result.exc
        if isinstance(result, _Failed):
            return True, self._failed(result)
        return True, result

    def ready(self) -> Iterator[Any]:
        """Results finished so far, without waiting."""
        while True:
            got, result = self._collect(block=False)
            if not got:
                return
            yield result

    def wait_one(self) -> Any:
        """Block for the next result (there must be work running)."""
        if self._running == 0:
            raise RuntimeError("nothing is running")
        return self._collect(block=True)[1]

    def drain(self) -> Iterator[Any]:
        """Every remaining result."""
        while not self.idle:
            yield self.wait_one()


class _Raised:
    def __init__(self, exc: BaseException):
        self.exc = exc


class _Failed:
    def __init__(self, item: Any, exc: Exception):
        self.item, self.exc = item, exc


def _chain(a: Iterator, b: Iterator) -> Iterator:
    yield from a
    yield from b
