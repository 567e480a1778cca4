"""Near-duplicate search at 100k and 1M images: does the cost grow linearly? (issue 5: ratio <= 12x)

Synthetic 64-bit hashes: uniformly random, plus 10 % planted near-duplicates of
other hashes (0-8 bits flipped; distances of pHashes are even). Each size runs the
array path of transforms/lsh.py: the same band layout (LshSpec from the config
defaults: 30 rounds x 3 bands), the same Hamming verification and the same
union-find as DedupeNear; the grouping of band keys (Beam's GroupByKey in
DedupeNear) is done per band with numpy: a bucket-occupancy count, a first-occupant
array for the buckets of two and a sort of the rare larger buckets. Prints the time
per size, the ratio, the recall of the planted pairs by distance and the random
pairs that passed (false positives).

Each band keeps a 2^22-slot count array, a fixed ~0.3 s over the 90 bands whatever
the size, which flatters the ratio a little; and random pairs sharing a 21-bit band
grow as n^2 / 2^21 per band: a small term at 1M, the one to watch past ~4M
(wider bands, i.e. fewer rounds of 2 bands, or a longer hash).

``--beam N`` also times DedupeNear itself on Beam's local FnApiRunner with N
records (Beam's per-element overhead dominates there; it is not part of the ratio).

    .venv/bin/python bench/dedupe_scale.py [--sizes 100000 1000000] [--beam 20000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipeline.build import lsh_spec  # noqa: E402
from pipeline.config import load_config  # noqa: E402
from transforms.lsh import LshSpec, connected_components, near_duplicate_edges  # noqa: E402

MAX_RATIO = 12.0
DISTANCES = (0, 2, 4, 6, 8)


def synthetic(n: int, seed: int = 0, dup_fraction: float = 0.1):
    """(hashes, planted (i, j) pairs, their distances)."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**63, size=n, dtype=np.uint64) * np.uint64(2)
    hashes |= rng.integers(0, 2, size=n, dtype=np.uint64)
    m = int(n * dup_fraction)
    sources = rng.choice(n - m, size=m, replace=False)
    dists = rng.choice(DISTANCES, size=m)
    bits = np.argsort(rng.random((m, 64)), axis=1)  # a random bit order per planted copy
    flips = np.zeros(m, dtype=np.uint64)
    for k in range(max(DISTANCES)):
        chosen = np.uint64(1) << bits[:, k].astype(np.uint64)
        flips |= np.where(dists > k, chosen, np.uint64(0))
    hashes[n - m:] = hashes[sources] ^ flips
    planted = np.stack([sources, np.arange(n - m, n)], axis=1)
    return hashes, planted, dists


def run_size(n: int, spec: LshSpec) -> dict:
    hashes, planted, dists = synthetic(n)
    start = time.perf_counter()
    edges = near_duplicate_edges(hashes, spec)
    groups = connected_components(map(tuple, edges.tolist()))
    seconds = time.perf_counter() - start
    found = set(map(tuple, edges.tolist()))
    hits = np.array([(int(a), int(b)) in found for a, b in planted])
    planted_set = set(map(tuple, planted.tolist()))
    false = sum(1 for e in found if e not in planted_set and int(np.bitwise_count(hashes[e[0]] ^ hashes[e[1]])) > 8)
    recall = {int(d): float(hits[dists == d].mean()) for d in DISTANCES}
    return {"n": n, "seconds": seconds, "edges": len(edges), "grouped": len(groups), "recall": recall,
            "false": false}


def run_beam(n: int, spec: LshSpec) -> float:
    import apache_beam as beam

    from filters.dedupe_policy import SurvivorPolicy
    from pipeline.records import AltPair, ResizedImage
    from tests.conftest import local_test_pipeline
    from transforms.dedupe import DedupeNear

    hashes, _, _ = synthetic(n, seed=1)
    records = [ResizedImage(pair=AltPair(f"{i:012x}", "http://b/p", f"http://b/{i}.jpg", "a b c"), data=b"",
                            ext="jpg", width=1, height=1, original_width=1, original_height=1, sha256="",
                            phash=f"{int(h):016x}", colour_sig="80" * 12) for i, h in enumerate(hashes)]
    start = time.perf_counter()
    with local_test_pipeline() as p:
        kept, _rejected = p | beam.Create(records, reshuffle=False) | DedupeNear(spec, SurvivorPolicy("first_by_key"))
        _ = kept | beam.combiners.Count.Globally()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=(100_000, 1_000_000))
    parser.add_argument("--beam", type=int, default=0, help="also time DedupeNear on Beam with N records")
    args = parser.parse_args()
    spec = lsh_spec(load_config())
    print(f"LSH: {spec.rounds} rounds x {spec.bands} bands ({spec.tables} band keys per image), "
          f"threshold {spec.threshold} bits; grouping per band in numpy (DedupeNear: a GroupByKey)")
    results = [run_size(n, spec) for n in args.sizes]
    for r in results:
        recall = " ".join(f"d{d}:{v:.3f}" for d, v in r["recall"].items())
        print(f"{r['n']:>9,} hashes: {r['seconds']:7.2f} s  ({r['n'] / r['seconds']:,.0f}/s)  edges {r['edges']:,}  "
              f"in groups {r['grouped']:,}  planted recall {recall}  random pairs passing {r['false']}")
    small, large = results
    ratio = large["seconds"] / small["seconds"]
    growth = large["n"] / small["n"]
    print(f"time ratio {ratio:.2f}x for {growth:.0f}x the hashes (limit {MAX_RATIO:.0f}x): "
          f"{'OK' if ratio <= MAX_RATIO else 'TOO SLOW'}")
    if args.beam:
        seconds = run_beam(args.beam, spec)
        print(f"Beam DedupeNear, FnApiRunner, {args.beam:,} records: {seconds:.1f} s ({args.beam / seconds:,.0f}/s)")
    return 0 if ratio <= MAX_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
