"""Connected components of a graph too large for one key: large-star / small-star rounds.

Input: edges ``(a, b)`` with ``a < b`` (string node keys; repeats allowed). Output:
``(node, root)`` for every node with an edge, ``root`` the smallest node of its
component: the same groups as union-find (transforms/lsh.py ``connected_components``),
whatever the graph's shape. No drop reasons.

How (Kiveris et al., "Connected Components in MapReduce and Beyond", 2014): ``rounds``
alternating large-star and small-star steps, unrolled in the graph. With m(u) the
smallest of u and its neighbours, large-star links every larger neighbour of u to
m(u); small-star links u and its smaller neighbours to the smallest of them. Both keep
the components and end in stars around each component's smallest node, in O(log^2 n)
rounds in theory. Rounds until no edge is left for the finisher (measured, 5 seeds
each): 2,000 random small groups 3; a 20,000-node star 1; a 20,000-node random tree 6-7;
a 1,000-node path with shuffled labels 8 (sorted labels 10; 10,000 nodes 11). Hence
the default of 8 (``dedupe.near_cc_rounds``): duplicate groups are small cliques and
stars, and a long chain that is left over is finished exactly on one key.

Convergence check, so the result is exact whatever the round count: over the last
round's edges, an edge (u, v) with m(u) != m(v) is not finished. Those label pairs
(none once converged; a few for an unusual graph) are gathered on one key, joined by
union-find, and applied through a side input: root(v) = find(m(v)). Every label of a
component is linked to the others through such pairs, and the component's smallest
node is its own label, so find gives it. Their number is the ``near_cc_residual_edges``
counter, with a warning past ``RESIDUAL_WARN`` (raise the rounds).

Per-node steps are hot-key safe: m(u) and the degrees are a CombinePerKey (lifted
before the shuffle), and every edge meets its node's label in a salted join
(transforms/hot_join.py), so a node with a million edges is spread over many keys.

Largest key at 100M images: NodeStats combines: one node, lifted (a few partial
accumulators per worker); salted joins: ~10,000 edges; the residual finisher: the
residual label pairs, ~0 once converged (warned past 100,000).
"""

from __future__ import annotations

import logging

import apache_beam as beam

from pipeline import metrics
from transforms.hot_join import HOT_KEY_VALUES, SaltedJoin
from transforms.lsh import connected_components

log = logging.getLogger(__name__)

DEFAULT_ROUNDS = 8
RESIDUAL_WARN = 100_000


class MinAndCount(beam.CombineFn):
    """Values -> (smallest value, number of values). Lifted: a hot key is summed before the shuffle."""

    def create_accumulator(self):
        return None

    def add_input(self, acc, value):
        return (value, 1) if acc is None else (min(acc[0], value), acc[1] + 1)

    def merge_accumulators(self, accs):
        out = None
        for acc in accs:
            if acc is not None:
                out = acc if out is None else (min(out[0], acc[0]), out[1] + acc[1])
        return out

    def extract_output(self, acc):
        return acc


class NodeStats(beam.CombineFn):
    """(candidate, n_lo, n_hi) inputs -> (smallest candidate, sum n_lo, sum n_hi)."""

    def create_accumulator(self):
        return None

    def add_input(self, acc, value):
        return value if acc is None else (min(acc[0], value[0]), acc[1] + value[1], acc[2] + value[2])

    def merge_accumulators(self, accs):
        out = None
        for acc in accs:
            if acc is not None:
                out = self.add_input(out, acc)
        return out

    def extract_output(self, acc):
        return acc


def _both_ends(edge):
    """m(u) = min(u, smaller neighbours), with u's numbers of larger (lo) and smaller (hi) neighbours."""
    a, b = edge[0], edge[1]
    yield b, (a, 0, 1)
    yield a, (a, 1, 0)


def _lo_keyed(edge):
    return edge[0], edge[1]


def _lo_count(stats):
    return stats[1]


def _hi_count(stats):
    return stats[2]


def _pair_count(stats):
    return stats[1]


def _large_star(a, stats, larger, _salt):
    """Node a's edges (a, b): every larger neighbour b goes to m(a); out keyed by b, for small-star."""
    label = stats[0] if stats else a
    for b in sorted(set(larger)):
        yield b, label


def _small_star(b, stats, smaller, salt):
    """Node b's edges (a, b): b and every smaller neighbour a go to m(b), the smallest of them."""
    label = stats[0]
    for a in sorted(set(smaller)):
        if a != label:
            yield label, a
    if salt == 0:
        yield label, b


# The convergence check's first half is large-star's step itself: node a's edges (a, b) -> (b, m(a)),
# which the second join then compares with m(b).
_label_to_hi_end = _large_star


def _unfinished(b, stats, lo_labels, _salt):
    """(m(a), m(b)) label pairs of edges whose ends disagree: not yet a star."""
    label = stats[0]
    for other in sorted(set(lo_labels)):
        if other != label:
            yield (other, label) if other < label else (label, other)


def finish_residual(key_and_pairs):
    """Union-find over the residual label pairs: (label, root) for every label in one."""
    _key, pairs = key_and_pairs
    pairs = list(pairs)
    metrics.inc(metrics.Counter.NEAR_CC_RESIDUAL, len(pairs))
    if len(pairs) > RESIDUAL_WARN:
        log.warning("connected components: %d label pairs left after the rounds, finished on one worker; "
                    "raise dedupe.near_cc_rounds", len(pairs))
    yield from sorted(connected_components(pairs).items())


def _apply_root(node_and_stats, roots: dict):
    node, stats = node_and_stats
    return node, roots.get(stats[0], stats[0])


class ConnectedComponents(beam.PTransform):
    """(a, b, ...) edges, a < b -> (node, smallest node of its component)."""

    def __init__(self, rounds: int = DEFAULT_ROUNDS, per_key: int = HOT_KEY_VALUES):
        super().__init__()
        if rounds < 0:
            raise ValueError("rounds must be >= 0")
        self.rounds, self.per_key = rounds, per_key

    def _node_stats(self, label, edges):
        return edges | f"{label}Ends" >> beam.FlatMap(_both_ends) | f"{label}Stats" >> beam.CombinePerKey(NodeStats())

    def _join(self, label, many, one, then, count_of, many_key=_lo_keyed):
        return {"many": many, "one": one} | label >> SaltedJoin(then, count_of, many_key, self.per_key)

    def expand(self, edges):
        for r in range(self.rounds):
            stats = self._node_stats(f"LargeStar{r}", edges)
            by_hi = self._join(f"LargeStarJoin{r}", edges, stats, _large_star, _lo_count)
            stats = by_hi | f"SmallStarStats{r}" >> beam.CombinePerKey(MinAndCount())
            edges = self._join(f"SmallStarJoin{r}", by_hi, stats, _small_star, _pair_count)
        stats = self._node_stats("Check", edges)
        at_hi = self._join("CheckLoJoin", edges, stats, _label_to_hi_end, _lo_count)
        residual = self._join("CheckHiJoin", at_hi, stats, _unfinished, _hi_count)
        roots = (residual | "OneResidualKey" >> beam.Map(lambda pair: (0, pair))
                 | "GatherResidual" >> beam.GroupByKey()
                 | "FinishResidual" >> beam.FlatMap(finish_residual))
        return stats | "Root" >> beam.Map(_apply_root, beam.pvalue.AsDict(roots))
