"""HostScheduler: concurrent work over many hosts, with a per-host cap (no Beam import).

Input: ``(host, iterable of items)`` groups and a function to run on each item
(a download, a download plus resize). Output: the function's results, in
completion order. At most ``total`` calls run at once and at most ``per_host``
for any one host; hosts take turns, so one big host cannot starve the rest.
Items are pulled from each host's iterable lazily, so a host with a million
URLs costs memory for the ones in flight only.

An item whose call raises an ``Exception`` costs that item only: with
``on_error`` the scheduler hands ``(item, exc)`` to it (in the caller's thread)
and yields what it returns in place of the result, and the host's in-flight
count is released as for any finished call. Without ``on_error`` the exception
is re-raised in the caller's thread. ``BaseException`` (KeyboardInterrupt,
SystemExit) is always re-raised.

Why by hand: a thread pool gives the concurrency (downloads wait on sockets,
Pillow releases the GIL while it decodes and resizes) but has no notion of a
per-host limit; politeness needs one. Spacing between requests to a host (robots
Crawl-delay) is the HTTP client's job.
"""

from __future__ import annotations

import queue
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator, Optional


class HostScheduler:
    """Feed host groups with ``add``; collect results with ``ready``/``wait_one``/``drain``."""

    def __init__(self, fn: Callable[[Any], Any], total: int, per_host: int,
                 on_error: Optional[Callable[[Any, Exception], Any]] = None):
        self.fn = fn
        self.on_error = on_error
        self.total = max(1, total)
        self.per_host = max(1, per_host)
        self.pool = ThreadPoolExecutor(max_workers=self.total, thread_name_prefix="wit-fetch")
        self._hosts: "OrderedDict[str, Iterator]" = OrderedDict()  # hosts with items left
        self._in_flight: dict[str, int] = {}
        self._running = 0
        self._done: "queue.Queue[tuple[str, Any]]" = queue.Queue()

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    @property
    def open_hosts(self) -> int:
        """Hosts with items queued or in flight."""
        return len(set(self._hosts) | {h for h, n in self._in_flight.items() if n})

    def pending(self, host: str) -> bool:
        """Whether ``host`` still has items not yet started."""
        return host in self._hosts

    @property
    def idle(self) -> bool:
        return self._running == 0 and not self._hosts

    def add(self, host: str, items: Iterable[Any]) -> None:
        if host in self._hosts:  # a second group for a host queues behind the first
            first = self._hosts[host]
            self._hosts[host] = _chain(first, iter(items))
        else:
            self._hosts[host] = iter(items)
        self._dispatch()

    def _next_item(self, host: str):
        try:
            return True, next(self._hosts[host])
        except StopIteration:
            del self._hosts[host]
            return False, None

    def _dispatch(self) -> None:
        """Start work until the global cap is reached or every host is at its cap."""
        progressed = True
        while self._running < self.total and progressed:
            progressed = False
            for host in list(self._hosts):
                if self._running >= self.total:
                    break
                if self._in_flight.get(host, 0) >= self.per_host:
                    continue
                has_item, item = self._next_item(host)
                if not has_item:
                    continue
                self._in_flight[host] = self._in_flight.get(host, 0) + 1
                self._running += 1
                self.pool.submit(self._run, host, item)
                progressed = True
                if host in self._hosts:  # round robin: this host goes to the back
                    self._hosts.move_to_end(host)

    def _run(self, host: str, item: Any) -> None:
        try:
            result = self.fn(item)
        except Exception as exc:  # one item's failure: handed to the caller's thread with the item
            self._done.put((host, _Failed(item, exc)))
            return
        except BaseException as exc:  # handed to the caller's thread, re-raised there
            self._done.put((host, _Raised(exc)))
            return
        self._done.put((host, result))

    def _failed(self, failed: "_Failed") -> Any:
        """The stand-in result of an item whose call raised (on_error's), or the exception again."""
        if self.on_error is None:
            raise failed.exc
        return self.on_error(failed.item, failed.exc)

    def _collect(self, block: bool):
        try:
            host, result = self._done.get(block=block)
        except queue.Empty:
            return False, None
        self._running -= 1
        self._in_flight[host] -= 1
        if not self._in_flight[host]:
            del self._in_flight[host]
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


def run_all(fn: Callable[[Any], Any], groups: Iterable[tuple[str, Iterable[Any]]],
            total: int, per_host: int, on_error: Optional[Callable[[Any, Exception], Any]] = None) -> list:
    """Convenience: every result of ``fn`` over all groups (completion order)."""
    scheduler = HostScheduler(fn, total, per_host, on_error)
    try:
        for host, items in groups:
            scheduler.add(host, items)
        return list(scheduler.drain())
    finally:
        scheduler.close()
