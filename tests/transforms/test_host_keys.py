"""transforms/host_keys.py: hot hosts over several keys, the concurrency budget dealt out."""

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import local_test_pipeline
from transforms.host_keys import HostShare, KeyByHostShard, shard_count, shard_of, share_of


def _host(url: str) -> str:
    return url.split("/")[2]


def _url(url: str) -> str:
    return url


@pytest.mark.parametrize("items,urls_per_key,per_host,expected", [
    (0, 1000, 8, 1), (1, 1000, 8, 1), (1000, 1000, 8, 1), (1001, 1000, 8, 2),
    (10_000_000, 1000, 8, 8), (40, 5, 8, 8), (40, 5, 3, 3), (12, 5, 8, 3), (5, 0, 0, 1),
])
def test_shard_count(items, urls_per_key, per_host, expected):
    assert shard_count(items, urls_per_key, per_host) == expected


@pytest.mark.parametrize("total,count", [(1, 1), (8, 1), (8, 3), (8, 8), (7, 2), (3, 3), (16, 5)])
def test_concurrency_shares_add_up_to_the_host_total(total, count):
    shares = [HostShare(i, count).concurrency(total) for i in range(count)]
    assert sum(shares) == total and min(shares) >= 1 and max(shares) - min(shares) <= 1


def test_shard_of_is_stable_and_in_range():
    urls = [f"http://h.test/{i}.jpg" for i in range(200)]
    first = [shard_of(u, 7) for u in urls]
    assert first == [shard_of(u, 7) for u in urls]
    assert set(first) == set(range(7))  # 200 URLs reach every key
    assert all(shard_of(u, 1) == 0 for u in urls)
    assert shard_of("http://h.test/\udcff", 3) in range(3)  # lone surrogates do not raise
    assert share_of(("h.test", 2, 5)) == HostShare(2, 5)


def test_a_hot_host_yields_several_keys_and_a_small_one_keeps_one():
    urls = [f"http://hot.test/{i}.jpg" for i in range(40)] + [f"http://small.test/{i}.jpg" for i in range(3)]
    p = local_test_pipeline()
    keyed = p | beam.Create(urls) | KeyByHostShard(_host, _url, urls_per_key=5, max_keys=4)
    keys = keyed | "Keys" >> beam.Map(lambda kv: kv[0]) | "Distinct" >> beam.Distinct()
    assert_that(keys, equal_to([("hot.test", i, 4) for i in range(4)] + [("small.test", 0, 1)]), label="keys")
    # Every item keeps its own key: the stable hash of its URL.
    assert_that(keyed | "Placed" >> beam.Map(lambda kv: kv[0][1] == shard_of(kv[1], kv[0][2])),
                equal_to([True] * len(urls)), label="placed")
    p.run().wait_until_finish()
