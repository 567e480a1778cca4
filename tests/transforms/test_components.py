"""transforms.components (large-star / small-star + residual finisher) and transforms.hot_join.

Every case compares with union-find (transforms/lsh.py connected_components): the groups
must be the same whatever the shape, the round count or the salting.
"""

import random

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given, settings, strategies as st

from tests.conftest import counter, local_test_pipeline
from transforms.components import ConnectedComponents
from transforms.hot_join import SaltedJoin
from transforms.lsh import connected_components


def _canonical(a, b):
    return (a, b) if a < b else (b, a)


def chain(n, prefix="c", seed=1):
    """A path of n nodes with shuffled labels (the slowest shape for the rounds)."""
    labels = [f"{prefix}{i:06d}" for i in range(n)]
    random.Random(seed).shuffle(labels)
    return [_canonical(labels[i], labels[i + 1]) for i in range(n - 1)]


def star(n, prefix="s"):
    return [(f"{prefix}000000", f"{prefix}{i:06d}") for i in range(1, n)]


def random_tree(n, prefix="t", seed=2):
    rng = random.Random(seed)
    labels = [f"{prefix}{i:06d}" for i in range(n)]
    rng.shuffle(labels)
    return [_canonical(labels[i], labels[rng.randrange(i)]) for i in range(1, n)]


def small_cliques(groups, prefix="g", seed=3):
    rng = random.Random(seed)
    edges = []
    for g in range(groups):
        nodes = [f"{prefix}{rng.randrange(10**6):06d}_{g}_{j}" for j in range(rng.randint(2, 5))]
        edges += [_canonical(a, b) for i, a in enumerate(nodes) for b in nodes[i + 1:]]
    return edges


def _run(edges, **kwargs):
    p = local_test_pipeline()
    roots = p | beam.Create(edges) | ConnectedComponents(**kwargs)
    assert_that(roots, equal_to(sorted(connected_components(edges).items())))
    result = p.run()
    result.wait_until_finish()
    return counter(result, "near_cc_residual_edges")


def test_a_path_and_small_cliques_converge_in_the_default_rounds():
    """8 rounds (the default) finish a shuffled 1,000-node path (measured: 8 rounds; small
    groups 3, a 20,000-node random tree 6-7); repeats of an edge change nothing."""
    edges = chain(1000) + small_cliques(500)
    assert _run(edges + edges[:50]) == 0  # nothing left for the finisher


def test_a_giant_group_is_salted_and_still_one_group():
    """A 20,000-node star (its centre's 20,000 edges: two salted keys) and a 20,000-node random
    tree, with one round: the star is done, the finisher joins the rest of the tree."""
    assert _run(star(20_000) + random_tree(20_000), rounds=1) > 0


def test_one_round_leaves_a_residual_and_the_finisher_still_gives_the_groups():
    residual = _run(chain(1000, seed=4) + small_cliques(50), rounds=1)
    assert residual > 100  # measured: a shuffled path keeps ~450 unfinished edges after one round


def test_no_rounds_is_union_find_on_one_key():
    assert _run(small_cliques(30) + chain(40), rounds=0) > 0


def test_tiny_salt_groups_change_nothing():
    """Every node with more than 3 edges spread over several keys: the same groups."""
    assert _run(star(200) + random_tree(300) + chain(100), rounds=2, per_key=3) >= 0


@settings(max_examples=6)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), max_size=60),
       st.integers(0, 3), st.sampled_from([1, 2, 10_000]))
def test_random_graphs_equal_union_find(pairs, rounds, per_key):
    edges = [_canonical(f"n{a:02d}", f"n{b:02d}") for a, b in pairs if a != b]
    if edges:
        _run(edges, rounds=rounds, per_key=per_key)


def _grouped(key, info, values, salt):
    yield key, salt, info, sorted(values)


def test_salted_join_spreads_a_hot_key_and_keeps_equal_values_together():
    many = [("hot", f"v{i % 20:02d}") for i in range(50)] + [("cold", "x"), ("cold", "y"), ("lonely", "z")]
    one = [("hot", ("H", 50)), ("cold", ("C", 2))]
    with local_test_pipeline() as p:
        out = ({"many": p | "M" >> beam.Create(many), "one": p | "O" >> beam.Create(one)}
               | SaltedJoin(_grouped, lambda info: info[1], per_key=10))

        def check(groups):
            hot = [g for g in groups if g[0] == "hot"]
            assert sorted(g[1] for g in hot) == [0, 1, 2, 3, 4]  # 50 values / 10 per key
            assert all(g[2] == ("H", 50) for g in hot)  # the info reaches every salt
            seen = [v for g in hot for v in set(g[3])]
            assert sorted(seen) == [f"v{i:02d}" for i in range(20)]  # each value in one salt only
            assert sum(len(g[3]) for g in hot) == 50
            assert [g for g in groups if g[0] != "hot"] == [("cold", 0, ("C", 2), ["x", "y"]),
                                                            ("lonely", 0, None, ["z"])]

        assert_that(out | beam.combiners.ToList() | beam.Map(sorted), lambda got: check(got[0]))
