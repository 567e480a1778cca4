"""transforms.lsh: banding, verification (DedupeNear's VerifyBuckets) against brute force, components."""

import numpy as np
import pytest

from itertools import combinations, product

from pipeline.specs import lsh_spec
from tests.default_specs import spec_with
from transforms.lsh import (band_positions, band_values, bucket_candidates, candidate_probability,
                            colour_close, connected_components, near_distance, table_band_values)

SPEC = spec_with(lsh_spec)


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
    assert len(tables) == SPEC.tables == 90 and tables == band_positions(spec_with(lsh_spec))
    for r in range(SPEC.rounds):
        round_bits = sorted(b for t in tables[r * 3:(r + 1) * 3] for b in t)
        assert round_bits == list(range(64))
    assert band_positions(spec_with(lsh_spec, seed=1)) != tables


def test_band_values_match_bit_extraction():
    value = 0xF0F0_1234_ABCD_0001
    row = band_values(np.array([value], dtype=np.uint64), SPEC)[0]
    for t, positions in enumerate(band_positions(SPEC)[:6]):
        assert row[t] == sum(((value >> b) & 1) << slot for slot, b in enumerate(positions))


@pytest.mark.parametrize("distance, low", [(0, 1.0), (2, 1.0), (4, 0.999), (6, 0.99), (8, 0.93)])
def test_candidate_probability(distance, low):
    assert low <= candidate_probability(distance, SPEC) <= 1.0


def _edges(hashes, colours=None, spec=SPEC, coloured=None):
    """Verified pairs (i < j) as DedupeNear finds them with prefix_bits 0: VerifyBuckets' Hamming test
    on every band table (``bucket_candidates``), then VerifyPairs' colour guard (``near_distance``)
    on the signatures of each candidate pair of hashes, and on signatures sharing one hash."""
    if coloured is None:
        coloured = np.full(len(hashes), colours is not None)
    hexes = [bytes(colours[i]).hex() if coloured[i] else "" for i in range(len(hashes))]
    rows = {}
    for i, h in enumerate(hashes.tolist()):
        rows.setdefault(h, []).append(i)
    pairs = {pair for t in range(spec.tables) for pair in bucket_candidates(hashes, spec, t)}
    pairs |= {(h, h) for h, idx in rows.items() if len(idx) > 1}
    found = set()
    for lo, hi in pairs:
        for i, j in (combinations(rows[lo], 2) if lo == hi else product(rows[lo], rows[hi])):
            if near_distance(lo, hexes[i], hi, hexes[j], spec) is not None:
                found.add((min(i, j), max(i, j)))
    return found


def test_table_band_values_are_band_values_of_one_table():
    hashes = np.random.default_rng(5).integers(0, 2**63, size=300, dtype=np.uint64) * np.uint64(2)
    values = band_values(hashes, SPEC)
    for t in (0, 1, 47, SPEC.tables - 1):
        assert np.array_equal(table_band_values(hashes, SPEC, t), values[:, t])


def test_bucket_candidates_share_the_band_and_pass_hamming():
    rng = np.random.default_rng(2)
    hashes, _, _ = _planted(n=3000, dup=300, seed=2, distances=(0, 2, 8, 9, 12))
    for t in (0, 13):
        bands = dict(zip(hashes.tolist(), table_band_values(hashes, SPEC, t).tolist()))
        got = bucket_candidates(rng.permutation(hashes), SPEC, t)
        assert len(got) == len(set(got))
        brute = {(int(a), int(b)) for a, b in combinations(sorted(set(hashes.tolist())), 2)
                 if bands[a] == bands[b] and (a ^ b).bit_count() <= SPEC.threshold}
        assert set(got) == brute and all(a < b for a, b in got)
    assert bucket_candidates(hashes[:1], SPEC, 0) == []
    assert bucket_candidates(np.array([7, 7], np.uint64), SPEC, 0) == []  # equal hashes: joined back instead


def test_verification_checks_distance_and_colour():
    grey, red = [0x80] * 12, [0xF0] + [0x80] * 11
    hashes = np.array([0b1111, 0b1100, 0b1111 << 20, 0b1110], dtype=np.uint64)
    colours = np.array([grey, grey, grey, red], dtype=np.uint8)
    assert _edges(hashes, colours, spec_with(lsh_spec, threshold=2, colour_delta=20)) == {(0, 1)}
    assert _edges(hashes, colours, spec_with(lsh_spec, threshold=2, colour_delta=255)) == {(0, 1), (0, 3), (1, 3)}
    uncoloured = np.array([True, True, True, False])  # no signature: the colour guard is skipped
    spec = spec_with(lsh_spec, threshold=2, colour_delta=20)
    assert _edges(hashes, colours, spec, uncoloured) == {(0, 1), (0, 3), (1, 3)}
    assert near_distance(0b1111, "80" * 12, 0b1100, "80" * 12, spec) == 2
    assert near_distance(0b1111, "80" * 12, 0b1000, "80" * 12, spec) is None  # 3 bits
    assert colour_close("80" * 12, "94" + "80" * 11, spec) and not colour_close("80" * 12, "95" + "80" * 11, spec)
    wide = spec_with(lsh_spec, colour_delta=255)
    assert colour_close("", "f0" * 12, spec) and colour_close("00" * 12, "ff" * 12, wide)


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
