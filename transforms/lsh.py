"""Near-duplicate search over 64-bit perceptual hashes: LSH banding, verification, components.

Input: 64-bit hashes (ints or a numpy ``uint64`` array) and an ``LshSpec``. Output:
candidate edges verified by Hamming distance, and connected components. No Beam
here and no drop reasons: ``transforms/dedupe.py`` (DedupeNear) is the Beam shell,
``bench/dedupe_scale.py`` drives the numpy path.

Banding: ``rounds`` fixed permutations of the 64 bits (seeded, so every worker and
every rerun uses the same ones), each split into ``bands`` bands of 64/bands bits.
Two hashes are candidates when they agree on every bit of at least one band. Within
a round, pigeonhole finds every pair closer than ``bands`` bits; the rounds make a
pair at distance d a candidate with probability 1 - (1 - P_round(d))^rounds (see
``candidate_probability``), 0.97 at d = 8 with the defaults (12 rounds x 3 bands of
21-22 bits). Bands that wide keep random buckets nearly empty at a million images
(2^21 buckets per band), so the work per image stays constant and the total grows
linearly: no all-pairs. Identical hashes are collapsed first, so a flood of copies
of one image cannot make a band bucket quadratic.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Hashable, Iterable, Sequence

import numpy as np

HASH_BITS = 64


@dataclass(frozen=True)
class LshSpec:
    threshold: int = 8  # near-duplicates: Hamming distance <= threshold
    rounds: int = 12  # bit permutations
    bands: int = 3  # bands per permutation (64 / bands bits each; 2..8)
    seed: int = 0

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


def band_keys(value: int, spec: LshSpec) -> list[tuple[int, int]]:
    """(table, band value) keys of one hash: what DedupeNear groups by."""
    row = band_values(np.array([value], dtype=np.uint64), spec)[0]
    return [(t, int(v)) for t, v in enumerate(row)]


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


def bucket_edges(members: Sequence[tuple[Hashable, int]], threshold: int) -> list[tuple]:
    """Verified pairs ``(a, b, distance)`` (a < b) among one bucket's ``(key, hash)`` members."""
    if len(members) < 2:
        return []
    keys = [k for k, _ in members]
    values = np.array([h for _, h in members], dtype=np.uint64)
    dist = np.bitwise_count(values[:, None] ^ values[None, :])
    rows, cols = np.nonzero(np.triu(dist <= threshold, 1))
    out = []
    for i, j in zip(rows.tolist(), cols.tolist()):
        a, b = (keys[i], keys[j]) if keys[i] < keys[j] else (keys[j], keys[i])
        out.append((a, b, int(dist[i, j])))
    return out


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


# ---- the whole search on arrays (bench/dedupe_scale.py, quality tests) -------------


def _pairs_in_runs(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions (p, q), p < q, of equal neighbours-within-runs in a sorted key array."""
    firsts, seconds = [], []
    same = sorted_keys[1:] == sorted_keys[:-1]
    offset = 1
    candidates = np.nonzero(same)[0]
    while candidates.size:
        firsts.append(candidates)
        seconds.append(candidates + offset)
        offset += 1
        nxt = candidates + offset
        ok = nxt < len(sorted_keys)
        candidates = candidates[ok]
        candidates = candidates[sorted_keys[candidates] == sorted_keys[candidates + offset]]
    if not firsts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(firsts), np.concatenate(seconds)


def near_duplicate_edges(hashes: np.ndarray, spec: LshSpec) -> np.ndarray:
    """``[m, 2]`` index pairs (i < j) with Hamming distance <= threshold, found through the bands.

    Identical hashes are linked to their first occurrence without banding. Grouping
    is a sort of (table, band value) keys: what Beam's GroupByKey does in DedupeNear.
    """
    hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
    uniq, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    same = np.nonzero(first[inverse] != np.arange(len(hashes)))[0]
    exact = np.stack([first[inverse[same]], same], axis=1)
    values = band_values(uniq, spec)
    keys = (np.arange(spec.tables, dtype=np.uint64)[None, :] << np.uint64(32)) | values.astype(np.uint64)
    keys = keys.ravel()
    owner = np.repeat(np.arange(len(uniq)), spec.tables)
    order = np.argsort(keys, kind="stable")
    p, q = _pairs_in_runs(keys[order])
    a, b = owner[order[p]], owner[order[q]]
    close = np.bitwise_count(uniq[a] ^ uniq[b]) <= spec.threshold
    pairs = np.unique(np.sort(np.stack([a[close], b[close]], axis=1), axis=1), axis=0)
    near = np.stack([first[pairs[:, 0]], first[pairs[:, 1]]], axis=1) if len(pairs) else np.empty((0, 2), np.int64)
    return np.sort(np.concatenate([exact.astype(np.int64), near.astype(np.int64)]), axis=1)


def near_duplicate_groups(hashes: np.ndarray, spec: LshSpec) -> dict:
    """``{index: root index}`` for every image in a group of two or more (components of the edges)."""
    edges = near_duplicate_edges(hashes, spec)
    return connected_components(map(tuple, edges.tolist()))
