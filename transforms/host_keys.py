"""Hot hosts over several keys, with the host's politeness budget split between the keys.

Input: a PCollection of items (image pairs, page URLs) and two functions: the item's host and
the URL that places it on a key. Output: ``((host, index, count), item)`` for a GroupByKey.

A host with at most ``urls_per_key`` items keeps one key, ``(host, 0, 1)``, as before. A host with
``n`` more is spread over ``count = min(max_keys, ceil(n / urls_per_key))`` keys by a stable hash of
the URL (blake2b, not Python's salted ``hash``: every worker and every rerun puts a URL on the same
key), so any runner can give one host to up to ``count`` workers. ``max_keys`` is at most the
host's concurrency (more keys would buy nothing: the host may not see more requests at once
anyway), and on a local run the number of worker processes (``fetch.max_keys_per_host: 0``,
pipeline/run.py): keys beyond the workers only cut each key's share. One worker runs the keys it
is given one after another as its bounded read-ahead buffer allows (transforms/fetch_scheduler.py),
so one process given a host's 32 keys of share 1 ran 2.7 requests at once on average where 32
were allowed (HostScheduler with its default 4,096-item buffer, 3,125 items a key, 5 ms a request:
25,000 items in 49.7 s; one key of share 32: 28.5 at once, 4.7 s; measured 2026-12-02).

Budget: ``HostShare(index, count)`` is a key's part of its host's limits, which hold for the host
as a whole, across workers that never talk to each other:
- concurrency ``C`` is dealt out: ``C // count`` each, the first ``C % count`` keys one more, so
  the shares add up to ``C`` exactly;
- request spacing (``fetch.per_host_min_interval_s``, robots Crawl-delay) is time-sliced by the
  wall clock in the HTTP client: see transforms/host_share.py (the Beam-free ``HostShare``).

Keys at 100M pairs: the per-host counts are a ``CombinePerKey(sum)``, which Beam combines on each
worker before the shuffle (combiner lifting), so a host with 10M URLs costs one partial count per
worker bundle, not 10M elements on one key. The side input holds only the hosts that split (more
than ``urls_per_key`` items): at most 100M / ``urls_per_key`` entries (100k at the default 1,000),
in practice the few thousand big image hosts. A fetch key then holds a host's ``n / count``
items: at most ``urls_per_key``-ish until the host has ``urls_per_key * per_host_concurrency``
items, ``n / per_host_concurrency`` beyond (1.25M for a 10M-item host at concurrency 8: read
into the fetch DoFn's bounded buffer as they download, transforms/fetch_scheduler.py).
No drop reasons: keying never fails (the host function must not raise).
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable

import apache_beam as beam

from transforms.host_share import WHOLE, HostShare  # noqa: F401  (re-exported)


def shard_count(items: int, urls_per_key: int, max_keys: int) -> int:
    """Keys for a host with ``items`` items: ceil(items / urls_per_key), at most ``max_keys``."""
    return max(1, min(max(1, max_keys), -(-max(0, items) // max(1, urls_per_key))))


def shard_of(url: str, count: int) -> int:
    """The key index of a URL among ``count``: a stable hash, the same on every worker and run."""
    if count <= 1:
        return 0
    digest = hashlib.blake2b(url.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def share_of(key: tuple) -> HostShare:
    """The HostShare of a ``(host, index, count)`` key."""
    _host, index, count = key
    return HostShare(index, count)


def _hot(host_and_count, urls_per_key: int, max_keys: int):
    host, count = host_and_count
    shards = shard_count(count, urls_per_key, max_keys)
    if shards > 1:
        yield host, shards


def _keyed(item, host_fn, url_fn, hot: dict):
    host = host_fn(item)
    count = hot.get(host, 1)
    return (host, shard_of(url_fn(item), count), count), item


class KeyByHostShard(beam.PTransform):
    """items -> ((host, index, count), item): hot hosts spread over several keys (see module doc)."""

    def __init__(self, host_fn: Callable[[Any], str], url_fn: Callable[[Any], str],
                 urls_per_key: int, max_keys: int):
        super().__init__()
        self.host_fn, self.url_fn = host_fn, url_fn
        self.urls_per_key, self.max_keys = urls_per_key, max_keys

    def expand(self, items):
        hot = (items
               | "HostOf" >> beam.Map(lambda item, f=self.host_fn: (f(item), 1))
               | "CountPerHost" >> beam.CombinePerKey(sum)
               | "HotHosts" >> beam.FlatMap(_hot, self.urls_per_key, self.max_keys))
        return items | "KeyByShard" >> beam.Map(_keyed, self.host_fn, self.url_fn, hot=beam.pvalue.AsDict(hot))
