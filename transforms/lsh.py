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
``candidate_probability``): with the defaults (30 rounds x 3 bands of 21-22 bits)
1.0 up to d = 4, 0.999 at d = 6, 0.96 at d = 8. Bands that wide keep random buckets
nearly empty at a million images (2^21 buckets per band), so the work per image is
a constant (90 band keys) and the total grows linearly: no all-pairs. Narrower
bands would find more pairs per round but fill buckets in proportion to the data
(16-bit bands: 15 random neighbours per bucket at 1M images, quadratic growth).
Identical signatures are collapsed first, so a flood of copies of one image cannot
make a bucket quadratic.

Verification: Hamming distance <= ``threshold`` and, when colour signatures are
given, the largest channel difference <= ``colour_delta`` (transforms/hashing.py).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import numpy as np

HASH_BITS = 64


@dataclass(frozen=True)
class LshSpec:
    threshold: int = 8  # near-duplicates: Hamming distance <= threshold
    rounds: int = 30  # bit permutations
    bands: int = 3  # bands per permutation (64 / bands bits each; 2..8)
    colour_delta: int = 20  # largest mean-colour difference (0-255) still a near-duplicate
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


def _colour_ok(a: str, b: str, delta: int) -> bool:
    if not a or not b or delta >= 255:
        return True
    x = np.frombuffer(bytes.fromhex(a), dtype=np.uint8).astype(np.int16)
    y = np.frombuffer(bytes.fromhex(b), dtype=np.uint8).astype(np.int16)
    return int(np.abs(x - y).max()) <= delta


def bucket_edges(members: Sequence[tuple], spec: LshSpec) -> list[tuple]:
    """Verified pairs ``(a, b, distance)`` (a < b) among one bucket's ``(key, hash, colour)`` members."""
    if len(members) < 2:
        return []
    keys = [m[0] for m in members]
    values = np.array([m[1] for m in members], dtype=np.uint64)
    dist = np.bitwise_count(values[:, None] ^ values[None, :])
    rows, cols = np.nonzero(np.triu(dist <= spec.threshold, 1))
    out = []
    for i, j in zip(rows.tolist(), cols.tolist()):
        if not _colour_ok(members[i][2], members[j][2], spec.colour_delta):
            continue
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


def _table_pairs(octets: np.ndarray, lut_t: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs sharing a band value in one table (the GroupByKey of one band).

    Linear in the images: buckets of one are skipped, buckets of two (nearly all
    the others) are paired through a first-occupant array, and only the rare
    larger buckets are sorted and paired exhaustively.
    """
    vals = lut_t[0][octets[:, 0]]
    for j in range(1, 8):
        vals = vals | lut_t[j][octets[:, j]]
    counts = np.bincount(vals, minlength=1 << width)
    sizes = counts[vals]
    two = np.nonzero(sizes == 2)[0]
    first = np.empty(1 << width, dtype=np.int64)
    first[vals[two[::-1]]] = two[::-1]  # the smaller index of each pair wins the slot
    partner = first[vals[two]]
    second = two[partner != two]
    big = np.nonzero(sizes > 2)[0]
    order = big[np.argsort(vals[big], kind="stable")]
    p, q = _pairs_in_runs(vals[order])
    return np.concatenate([first[vals[second]], order[p]]), np.concatenate([second, order[q]])


def verify(a: np.ndarray, b: np.ndarray, hashes: np.ndarray, colours: Optional[np.ndarray], spec: LshSpec,
           coloured: Optional[np.ndarray] = None) -> np.ndarray:
    """Mask of candidate pairs (a[i], b[i]) that are near-duplicates: Hamming and colour guard.

    ``coloured``: rows that have a colour signature (the guard is skipped when either lacks one).
    """
    keep = np.bitwise_count(hashes[a] ^ hashes[b]) <= spec.threshold
    if colours is not None and spec.colour_delta < 255:
        close = np.abs(colours[a].astype(np.int16) - colours[b].astype(np.int16)).max(axis=1) <= spec.colour_delta
        if coloured is not None:
            close |= ~(coloured[a] & coloured[b])
        keep &= close
    return keep


def bucket_group_edges(bands: np.ndarray, hashes: np.ndarray, colours: np.ndarray, coloured: np.ndarray,
                       spec: LshSpec) -> list[tuple[int, int, int]]:
    """(i, j, distance) of verified pairs sharing a band value, among rows of one band's entries."""
    order = np.argsort(bands, kind="stable")
    p, q = _pairs_in_runs(bands[order])
    a, b = order[p], order[q]
    keep = verify(a, b, hashes, colours, spec, coloured)
    dist = np.bitwise_count(hashes[a[keep]] ^ hashes[b[keep]])
    return list(zip(a[keep].tolist(), b[keep].tolist(), dist.tolist()))


def near_duplicate_edges(hashes: np.ndarray, spec: LshSpec, colours: Optional[np.ndarray] = None) -> np.ndarray:
    """``[m, 2]`` index pairs (i < j) of near-duplicates found through the bands.

    ``colours``: optional ``[n, 12]`` uint8 colour signatures (the colour guard).
    Identical signatures are linked to their first occurrence without banding.
    Grouping sorts each table's band values: what Beam's GroupByKey does in DedupeNear.
    """
    hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
    if colours is None:
        _, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    else:
        rows = np.ascontiguousarray(np.concatenate(
            [hashes[:, None].view(np.uint8), np.asarray(colours, dtype=np.uint8)], axis=1))
        signatures = rows.view(np.dtype((np.void, rows.shape[1]))).ravel()
        _, first, inverse = np.unique(signatures, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    same = np.nonzero(first[inverse] != np.arange(len(hashes)))[0]
    edges = [np.stack([first[inverse[same]], same], axis=1)]
    uniq = hashes[first]
    octets = uniq.astype("<u8").view(np.uint8).reshape(-1, 8)
    lut = _byte_tables(spec)
    width = max(len(p) for p in band_positions(spec))
    for t in range(spec.tables):
        a, b = _table_pairs(octets, lut[t], width)
        keep = verify(a, b, uniq, None if colours is None else np.asarray(colours)[first], spec)
        edges.append(np.stack([first[a[keep]], first[b[keep]]], axis=1))
    found = np.sort(np.concatenate(edges).astype(np.int64), axis=1)
    return np.unique(found, axis=0) if len(found) else found.reshape(0, 2)


def near_duplicate_groups(hashes: np.ndarray, spec: LshSpec, colours: Optional[np.ndarray] = None) -> dict:
    """``{index: root index}`` for every image in a group of two or more (components of the edges)."""
    edges = near_duplicate_edges(hashes, spec, colours)
    return connected_components(map(tuple, edges.tolist()))
