"""transforms/fetch_scheduler.py: per-key caps, a bounded read-ahead buffer, keys running at once."""

import threading
import time

from transforms.fetch_scheduler import HostScheduler


class _Probe:
    """A work function that records how many calls run at once, overall and per key."""

    def __init__(self, seconds: float = 0.02):
        self.seconds, self.lock = seconds, threading.Lock()
        self.now: dict = {}
        self.peak: dict = {}

    def __call__(self, item):
        key = item[0]
        with self.lock:
            for k in (key, "*"):
                self.now[k] = self.now.get(k, 0) + 1
                self.peak[k] = max(self.peak.get(k, 0), self.now[k])
        time.sleep(self.seconds)
        with self.lock:
            for k in (key, "*"):
                self.now[k] -= 1
        return item


def _items(key, n, pulled=None):
    for i in range(n):
        if pulled is not None:
            pulled.append((key, i))
        yield key, i


def test_add_returns_once_read_and_keys_of_cap_one_run_at_once():
    probe = _Probe()
    scheduler = HostScheduler(probe, total=4, per_host=8)
    try:
        for key in "abcd":  # four keys of one host, each with a concurrency share of 1
            scheduler.add(key, _items(key, 10), limit=1)
            assert not scheduler.unread(key)  # the whole iterable is in the buffer: add did not block
        out = list(scheduler.drain())
    finally:
        scheduler.close()
    assert sorted(out) == sorted((k, i) for k in "abcd" for i in range(10))
    assert probe.peak["*"] == 4 and all(probe.peak[k] == 1 for k in "abcd")


def test_the_buffer_bounds_what_is_read_ahead():
    probe, pulled = _Probe(0.01), []
    scheduler = HostScheduler(probe, total=2, per_host=2, buffer=5)
    try:
        scheduler.add("a", _items("a", 50, pulled))
        # 2 running, 5 waiting (+1 read by the generator's look-ahead at most): the rest unread.
        assert scheduler.unread("a") and scheduler.buffered == 5 and len(pulled) <= 8
        seen = 0
        while scheduler.unread("a"):  # what a DoFn's process does: wait while the key is unread
            scheduler.wait_one()
            seen += 1
            assert scheduler.buffered <= 5 and len(pulled) - seen <= 8
        rest = list(scheduler.drain())
    finally:
        scheduler.close()
    assert seen + len(rest) == 50 and scheduler.idle


def test_per_key_limits_and_round_robin_over_keys():
    probe = _Probe()
    scheduler = HostScheduler(probe, total=6, per_host=3)
    try:
        scheduler.add("big", _items("big", 30))  # default limit: per_host
        scheduler.add("one", _items("one", 5), limit=1)
        scheduler.add("two", _items("two", 5), limit=2)
        assert scheduler.pending("big") and scheduler.pending("one")
        out = list(scheduler.drain())
    finally:
        scheduler.close()
    assert len(out) == 40 and scheduler.idle and not scheduler.pending("big")
    assert probe.peak["big"] == 3 and probe.peak["one"] == 1 and probe.peak["two"] == 2 and probe.peak["*"] == 6


def test_a_second_group_for_a_key_queues_behind_the_first():
    order = []
    scheduler = HostScheduler(lambda item: order.append(item) or item, total=1, per_host=1)
    try:
        scheduler.add("k", ["a1", "a2"])
        scheduler.add("k", ["b1"])
        assert list(scheduler.drain()) == ["a1", "a2", "b1"] and order == ["a1", "a2", "b1"]
    finally:
        scheduler.close()


def test_an_empty_group_leaves_nothing_behind():
    scheduler = HostScheduler(lambda item: item, total=2, per_host=1)
    try:
        scheduler.add("empty", [])
        assert scheduler.idle and not scheduler.pending("empty") and not scheduler.unread("empty")
    finally:
        scheduler.close()
