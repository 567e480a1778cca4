"""transforms.lsh: banding, verification (DedupeNear's VerifyBuckets) against brute force, components."""

import numpy as np
import pytest

from transforms.lsh import (LshSpec, band_positions, band_values, bucket_group_edges, candidate_probability,
                            connected_components)

SPEC = LshSpec()


def _planted(n=20000, dup=2000, seed=0, distances=(0, 2, 4, 6)):
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**63, size=n, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, size=n,
                                                                                             dtype=np.uint64)
    src = rng.choice(n - dup, size=dup, replace=False)
    dists = rng.choice(distances, size=dup)
    for i in range(dup):
        flips = np.uint64(0)
        for bit in rng.choice(64, size=dists[i], replace=False):
            flips |= np.uint64(1) << np.uint64(bit)
        hashes[n - dup + i] = hashes[src[i]] ^ flips
    return hashes, [(int(min(s, n - dup + i)), int(max(s, n - dup + i))) for i, s in enumerate(src)], dists


def test_band_layout_is_fixed_and_covers_every_bit_each_round():
    tables = band_positions(SPEC)
    assert len(tables) == SPEC.tables == 90 and tables == band_positions(LshSpec())
    for r in range(SPEC.rounds):
        round_bits = sorted(b for t in tables[r * 3:(r + 1) * 3] for b in t)
        assert round_bits == list(range(64))
    assert band_positions(LshSpec(seed=1)) != tables


def test_band_values_match_bit_extraction():
    value = 0xF0F0_1234_ABCD_0001
    row = band_values(np.array([value], dtype=np.uint64), SPEC)[0]
    for t, positions in enumerate(band_positions(SPEC)[:6]):
        assert row[t] == sum(((value >> b) & 1) << slot for slot, b in enumerate(positions))


@pytest.mark.parametrize("distance, low", [(0, 1.0), (2, 1.0), (4, 0.999), (6, 0.99), (8, 0.93)])
def test_candidate_probability(distance, low):
    assert low <= candidate_probability(distance, SPEC) <= 1.0


def _edges(hashes, colours=None, spec=SPEC):
    """Verified pairs (i < j) over every band table, each table one group: what DedupeNear's
    VerifyBuckets finds with prefix_bits 0."""
    coloured = np.full(len(hashes), colours is not None)
    colours = np.zeros((len(hashes), 12), np.uint8) if colours is None else colours
    values = band_values(hashes, spec)
    found = set()
    for t in range(spec.tables):
        for i, j, _dist in bucket_group_edges(values[:, t], hashes, colours, coloured, spec):
            found.add((min(i, j), max(i, j)))
    return found


def test_bucket_group_edges_verify_distance_and_colour():
    grey, red = [0x80] * 12, [0xF0] + [0x80] * 11
    hashes = np.array([0b1111, 0b1100, 0b1111 << 20, 0b1110], dtype=np.uint64)
    colours = np.array([grey, grey, grey, red], dtype=np.uint8)
    bands = np.zeros(4, np.uint32)  # one bucket: every pair is a candidate
    coloured = np.ones(4, bool)
    got = bucket_group_edges(bands, hashes, colours, coloured, LshSpec(threshold=2, colour_delta=20))
    assert got == [(0, 1, 2)]
    got = bucket_group_edges(bands, hashes, colours, coloured, LshSpec(threshold=2, colour_delta=255))
    assert sorted(got) == [(0, 1, 2), (0, 3, 1), (1, 3, 1)]
    uncoloured = np.array([True, True, True, False])  # no signature: the colour guard is skipped
    got = bucket_group_edges(bands, hashes, colours, uncoloured, LshSpec(threshold=2, colour_delta=20))
    assert sorted(got) == [(0, 1, 2), (0, 3, 1), (1, 3, 1)]
    assert bucket_group_edges(bands[:1], hashes[:1], colours[:1], coloured[:1], SPEC) == []


def test_connected_components_root_is_smallest_member():
    comps = connected_components([("c", "d"), ("b", "c"), ("x", "y"), ("a", "d"), ("y", "z")])
    assert comps == {"a": "a", "b": "a", "c": "a", "d": "a", "x": "x", "y": "x", "z": "x"}
    assert connected_components([]) == {}


def test_band_search_finds_planted_pairs_and_nothing_random():
    hashes, planted, _ = _planted()
    edges = _edges(hashes)
    assert set(planted) <= edges  # distances <= 6: certain
    dist = [int(np.bitwise_count(hashes[a] ^ hashes[b])) for a, b in edges]
    assert max(dist) <= SPEC.threshold
    assert len(edges - set(planted)) <= 5  # random 64-bit hashes are ~32 bits apart


def test_band_search_equals_brute_force_on_a_small_set():
    hashes, _, _ = _planted(n=1500, dup=300, seed=3, distances=(0, 2, 4, 6, 8, 10))
    dist = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    brute = {(int(a), int(b)) for a, b in zip(*np.nonzero(np.triu(dist <= SPEC.threshold, 1)))}
    found = _edges(hashes)
    assert found <= brute and len(found) >= 0.97 * len(brute)


def test_identical_hashes_with_other_colours_are_not_linked():
    hashes = np.array([7, 7, 7, 0xFFFF_FFFF_0000_0000], dtype=np.uint64)
    colours = np.array([[10] * 12, [12] * 12, [200] * 12, [10] * 12], dtype=np.uint8)
    assert _edges(hashes, colours) == {(0, 1)}
    assert _edges(hashes) == {(0, 1), (0, 2), (1, 2)}
