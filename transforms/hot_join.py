"""A join where one key may hold a huge share of the elements: a salted GroupByKey.

Input (a dict of PCollections):
- ``many``: any number of elements per key (a node's edges, a group's members), keyed
  by ``many_key``: element -> (key, value);
- ``one``: ``(key, info)``, at most one per key (the node's label, the group's survivor),
  where ``count_of(info)`` is the number of ``many`` elements of the key (callers get it
  from the same CombinePerKey that made ``info``: lifted before the shuffle).
Output: ``then(key, info, values, salt)`` for every salted group: ``values`` a list of the
key's ``many`` values that fell in this salt (all of them for a cold key; possibly
empty), ``info`` None when ``one`` has nothing for the key. No drop reasons.

Why: a plain CoGroupByKey puts every value of a key on one worker. A star centre with a
million edges, or a duplicate group of a million images, would be one key. Keys with
more than ``per_key`` values (a side input holding only those keys: at 100M images a
few thousand at most) are spread over ceil(n / per_key) salts; a value's salt is a
stable hash of the value (crc32 of its repr: Python's ``hash`` of a str differs between
worker processes), so equal values meet in one group and ``then`` can drop repeats
there. The ``one`` element is copied to every salt of its key.

Few steps on purpose: Beam's local runner costs ~30 ms per ParDo whatever the data, and
the connected components use this join twice per round, so the join is three ParDos and
one GroupByKey (``then`` runs inside the last one).

Largest key at 100M images: about ``per_key`` values (10,000 by default, plus the hash's
imbalance) whatever the largest key holds.
"""

from __future__ import annotations

import zlib
from typing import Callable

import apache_beam as beam

HOT_KEY_VALUES = 10_000  # values per salted group above which a key is split

_ONE, _MANY = 0, 1


def salt_of(value, salts: int) -> int:
    """Stable salt of a value in 0..salts-1 (the same on every worker and every run)."""
    return zlib.crc32(repr(value).encode("utf-8")) % salts if salts > 1 else 0


def salts_for(count: int, per_key: int) -> int:
    return max(1, -(-count // per_key))


class _SaltOneFn(beam.DoFn):
    """(key, info) -> ((key, salt), info) for each of the key's salts; hot keys also to "hot"."""

    def __init__(self, count_of: Callable, per_key: int):
        self.count_of, self.per_key = count_of, per_key

    def process(self, key_and_info):
        key, info = key_and_info
        salts = salts_for(self.count_of(info), self.per_key)
        if salts > 1:
            yield beam.pvalue.TaggedOutput("hot", (key, salts))
        for salt in range(salts):
            yield (key, salt), (_ONE, info)


def _salt_many(element, many_key: Callable, hot: dict):
    key, value = many_key(element)
    return (key, salt_of(value, hot.get(key, 1))), (_MANY, value)


def _unsalt(salted_and_tagged, then: Callable):
    (key, salt), tagged = salted_and_tagged
    info, values = None, []
    for tag, item in tagged:
        if tag == _ONE:
            info = item
        else:
            values.append(item)
    return then(key, info, values, salt)


def _identity(element):
    return element


class SaltedJoin(beam.PTransform):
    """{"many": elements, "one": (key, info)} -> then(key, info, values, salt) per salted group."""

    def __init__(self, then: Callable, count_of: Callable, many_key: Callable = _identity,
                 per_key: int = HOT_KEY_VALUES):
        super().__init__()
        self.then, self.count_of, self.many_key, self.per_key = then, count_of, many_key, per_key

    def expand(self, inputs):
        one = inputs["one"] | "SaltOne" >> beam.ParDo(_SaltOneFn(self.count_of, self.per_key)).with_outputs(
            "hot", main="salted")
        many = inputs["many"] | "SaltMany" >> beam.Map(_salt_many, self.many_key, beam.pvalue.AsDict(one.hot))
        return ((one.salted, many) | "Both" >> beam.Flatten() | "GroupSalted" >> beam.GroupByKey()
                | "Unsalt" >> beam.FlatMap(_unsalt, self.then))
