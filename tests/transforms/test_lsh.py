"""transforms.lsh: banding, verification, components, and the array search against brute force."""

import numpy as np
import pytest

from transforms.lsh import (LshSpec, band_keys, band_positions, band_values, bucket_edges, candidate_probability,
                            connected_components, near_duplicate_edges, near_duplicate_groups)

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
    assert band_keys(value, SPEC)[:3] == [(0, int(row[0])), (1, int(row[1])), (2, int(row[2]))]


@pytest.mark.parametrize("distance, low", [(0, 1.0), (2, 1.0), (4, 0.999), (6, 0.99), (8, 0.93)])
def test_candidate_probability(distance, low):
    assert low <= candidate_probability(distance, SPEC) <= 1.0


def test_bucket_edges_verify_distance_and_colour():
    grey, red = "80" * 12, "f0" + "80" * 11
    members = [("b", 0b1111, grey), ("a", 0b1100, grey), ("c", 0b1111 << 20, grey), ("d", 0b1110, red)]
    assert bucket_edges(members, LshSpec(threshold=2, colour_delta=20)) == [("a", "b", 2)]
    assert bucket_edges(members, LshSpec(threshold=2, colour_delta=255)) == [("a", "b", 2), ("b", "d", 1),
                                                                             ("a", "d", 1)]
    assert bucket_edges(members[:1], SPEC) == []


def test_connected_components_root_is_smallest_member():
    comps = connected_components([("c", "d"), ("b", "c"), ("x", "y"), ("a", "d"), ("y", "z")])
    assert comps == {"a": "a", "b": "a", "c": "a", "d": "a", "x": "x", "y": "x", "z": "x"}
    assert connected_components([]) == {}


def test_array_search_finds_planted_pairs_and_nothing_random():
    hashes, planted, _ = _planted()
    edges = {tuple(e) for e in near_duplicate_edges(hashes, SPEC).tolist()}
    assert set(planted) <= edges  # distances <= 6: certain
    dist = [int(np.bitwise_count(hashes[a] ^ hashes[b])) for a, b in edges]
    assert max(dist) <= SPEC.threshold
    assert len(edges - set(planted)) <= 5  # random 64-bit hashes are ~32 bits apart


def test_array_search_equals_brute_force_on_a_small_set():
    hashes, _, _ = _planted(n=1500, dup=300, seed=3, distances=(0, 2, 4, 6, 8, 10))
    dist = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    brute = {(int(a), int(b)) for a, b in zip(*np.nonzero(np.triu(dist <= SPEC.threshold, 1)))}
    found = {tuple(e) for e in near_duplicate_edges(hashes, SPEC).tolist()}
    assert found <= brute and len(found) >= 0.97 * len(brute)


def test_identical_hashes_with_other_colours_are_not_merged():
    hashes = np.array([7, 7, 7, 0xFFFF_FFFF_0000_0000], dtype=np.uint64)
    colours = np.array([[10] * 12, [12] * 12, [200] * 12, [10] * 12], dtype=np.uint8)
    groups = near_duplicate_groups(hashes, SPEC, colours)
    assert groups == {0: 0, 1: 0}
    assert near_duplicate_groups(hashes, SPEC) == {0: 0, 1: 0, 2: 0}
