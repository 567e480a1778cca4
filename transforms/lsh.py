"""Near-duplicate search over 64-bit perceptual hashes: LSH banding, verification, components.

Input: 64-bit hashes (a numpy ``uint64`` array) and an ``LshSpec``. Output: band values,
candidate pairs verified by Hamming distance, the colour guard, and union-find components (the
residual finisher of transforms/components.py). No Beam here and no drop reasons:
``transforms/dedupe.py`` (DedupeNear) is the Beam shell and the only search there is;
``bench/dedupe_scale.py`` and the quality tests run it, not a copy on arrays.

Banding: ``rounds`` fixed permutations of the 64 bits (seeded, so every worker and
every rerun uses the same ones), each split into ``bands`` bands of 64/bands bits.
Two hashes are candidates when they agree on every bit of at least one band. Within
a round, pigeonhole finds every pair closer than ``bands`` bits; the rounds make a
pair at distance d a candidate with probability 1 - (1 - P_round(d))^rounds (see
``candidate_probability``): with the defaults (30 rounds x 3 bands of 21-22 bits)
1.0 up to d = 4, 0.999 at d = 6, 0.96 at d = 8. Bands that wide keep random buckets
nearly empty at a million images (2^21 buckets per band), so the work per image is
a constant (90 band keys) and the total grows linearly: no all-pairs. Narrower
bands would find more pairs per round but fill buckets in proportion to the data
(16-bit bands: 15 random neighbours per bucket at 1M images, quadratic growth).
Identical signatures are collapsed first, so a flood of copies of one image cannot
make a bucket quadratic.

Verification, in two steps so that the band entries carry the hash alone (8 bytes per
image and table; the FnApiRunner holds a GroupByKey's whole input, bench/memory.py):
``bucket_candidates`` keeps the pairs of distinct hashes in one band bucket within
Hamming distance ``threshold``; ``near_distance`` then applies the colour guard (the
largest channel difference of the colour signatures <= ``colour_delta``,
transforms/hashing.py; skipped when either has none) to the signatures of those few
pairs, and of signatures sharing one hash, once DedupeNear has joined them back.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np

HASH_BITS = 64


@dataclass(frozen=True)
class LshSpec:
    threshold: int  # near-duplicates: Hamming distance <= threshold (dedupe.near_threshold)
    rounds: int  # bit permutations (dedupe.near_rounds)
    bands: int  # bands per permutation (64 / bands bits each; 2..8) (dedupe.near_bands)
    colour_delta: int  # largest mean-colour difference (0-255) still a near-duplicate (dedupe.near_colour_delta)
    seed: int  # of the bit permutations (not a knob: pipeline/specs.py passes 0)

    @property
    def tables(self) -> int:
        return self.rounds * self.bands


@functools.lru_cache(maxsize=16)
def band_positions(spec: LshSpec) -> tuple[tuple[int, ...], ...]:
    """Bit positions (0 = least significant) of every band, round after round."""
    rng = np.random.default_rng(spec.seed)
    tables = []
    for _ in range(spec.rounds):
        perm = rng.permutation(HASH_BITS)
        tables.extend(tuple(sorted(int(b) for b in chunk)) for chunk in np.array_split(perm, spec.bands))
    return tuple(tables)


@functools.lru_cache(maxsize=16)
def _byte_tables(spec: LshSpec) -> np.ndarray:
    """lut[t, j, v]: the band-t bits of byte j (bits 8j..8j+7) having value v, packed in place."""
    lut = np.zeros((spec.tables, 8, 256), dtype=np.uint32)
    values = np.arange(256)
    for t, positions in enumerate(band_positions(spec)):
        for slot, bit in enumerate(positions):
            byte, shift = divmod(bit, 8)
            lut[t, byte] |= (((values >> shift) & 1) << slot).astype(np.uint32)
    return lut


def band_values(hashes: np.ndarray, spec: LshSpec) -> np.ndarray:
    """``[n, tables]`` uint32 band values of ``n`` uint64 hashes (8 table lookups per band)."""
    hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
    octets = hashes.astype("<u8").view(np.uint8).reshape(-1, 8)
    lut = _byte_tables(spec)
    out = np.zeros((len(hashes), spec.tables), dtype=np.uint32)
    for t in range(spec.tables):
        for j in range(8):
            out[:, t] |= lut[t, j][octets[:, j]]
    return out


def candidate_probability(distance: int, spec: LshSpec) -> float:
    """P(two hashes ``distance`` bits apart share a band in at least one table)."""
    widths = [len(p) for p in band_positions(spec)[: spec.bands]]
    total = math.comb(HASH_BITS, distance)
    # inclusion-exclusion over which bands of one round stay clean
    p_round = 0.0
    for mask in range(1, 1 << len(widths)):
        clean = sum(w for i, w in enumerate(widths) if mask >> i & 1)
        sign = -1 if bin(mask).count("1") % 2 == 0 else 1
        p_round += sign * math.comb(HASH_BITS - clean, distance) / total
    return 1.0 - (1.0 - p_round) ** spec.rounds


def connected_components(edges: Iterable[tuple]) -> dict:
    """Union-find over ``(a, b, ...)`` edges: ``{node: root}`` with root = smallest node of its component."""
    parent: dict = {}

    def find(x):
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    for edge in edges:
        ra, rb = find(edge[0]), find(edge[1])
        if ra != rb:
            lo, hi = (ra, rb) if ra < rb else (rb, ra)
            parent[hi] = lo
            parent.setdefault(lo, lo)
    return {node: find(node) for node in parent}


# ---- DedupeNear's two verification steps ----
# VerifyBuckets: the Hamming test among one (table, prefix) group of band entries, which carry
# the hashes only (8 bytes per image and table: the band value is recomputed from the hash);
# VerifyPairs: the colour guard on the few pairs that passed, joined back to their signatures.


def table_band_values(hashes: np.ndarray, spec: LshSpec, table: int) -> np.ndarray:
    """Band values of one table (``band_values(hashes, spec)[:, table]`` without the other 89)."""
    octets = np.ascontiguousarray(hashes, dtype=np.uint64).astype("<u8").view(np.uint8).reshape(-1, 8)
    lut = _byte_tables(spec)[table]
    out = np.zeros(len(octets), dtype=np.uint32)
    for j in range(8):
        out |= lut[j][octets[:, j]]
    return out


def _pairs_in_runs(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions (p, q), p < q, of equal values within runs of a sorted array."""
    firsts, seconds = [], []
    candidates = np.nonzero(sorted_keys[1:] == sorted_keys[:-1])[0]
    offset = 1
    while candidates.size:
        firsts.append(candidates)
        seconds.append(candidates + offset)
        offset += 1
        candidates = candidates[candidates + offset < len(sorted_keys)]
        candidates = candidates[sorted_keys[candidates] == sorted_keys[candidates + offset]]
    if not firsts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(firsts), np.concatenate(seconds)


def bucket_candidates(hashes: np.ndarray, spec: LshSpec, table: int) -> list[tuple[int, int]]:
    """(a, b), a < b, of distinct hashes that share ``table``'s band value and are within the
    Hamming threshold. Equal hashes are not paired here: they share every band, and their
    signatures (which differ in colour) are compared where they are joined back."""
    hashes = np.unique(np.asarray(hashes, dtype=np.uint64))  # sorted; a hash from several bundles once
    bands = table_band_values(hashes, spec, table)
    order = np.argsort(bands, kind="stable")
    p, q = _pairs_in_runs(bands[order])
    a, b = hashes[order[p]], hashes[order[q]]
    keep = np.bitwise_count(a ^ b) <= spec.threshold
    lo, hi = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
    return list(zip(lo.tolist(), hi.tolist()))


def colour_close(colour_a: str, colour_b: str, spec: LshSpec) -> bool:
    """The colour guard: the largest channel difference of two colour signatures (hex) within
    ``colour_delta``; skipped (True) when either has no signature or the delta is 255."""
    if spec.colour_delta >= 255 or not colour_a or not colour_b:
        return True
    return max(abs(x - y) for x, y in zip(bytes.fromhex(colour_a), bytes.fromhex(colour_b))) <= spec.colour_delta


def near_distance(hash_a: int, colour_a: str, hash_b: int, colour_b: str, spec: LshSpec) -> Optional[int]:
    """Hamming distance of two signatures that are near-duplicates, None when they are not."""
    distance = (hash_a ^ hash_b).bit_count()
    if distance <= spec.threshold and colour_close(colour_a, colour_b, spec):
        return distance
    return None
