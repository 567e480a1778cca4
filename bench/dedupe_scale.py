"""DedupeNear at 100k and 1M images: does the cost grow linearly? (issue 5: ratio <= 12x)

Runs the production path: ``transforms.dedupe.DedupeNear`` on Beam's FnApiRunner, set up
as ``wit curate`` sets it up (pipeline/runners.py), with the config defaults (LSH 30
rounds x 3 bands, threshold 8, ``dedupe.near_cc_rounds`` rounds of connected components,
survivor policy ``first_by_key``). Records are light ``ResizedImage``s (no image bytes).

Synthetic pHashes: uniformly random, plus planted families (5 % of the images): a base
and variants at known Hamming distances from it, three under the threshold (2-8 bits)
and one over it (12 or 16 bits). A family's true groups are the components of its
members within the threshold (brute force inside the family: two variants can be
close to each other). Prints, per size: the wall time of the whole run, the recall and
precision of the planted pairs (pairwise over DedupeNear's groups), the random
(unplanted) images it grouped, the residual pairs the component rounds left for the
one-key finisher; then the time ratio. The base rate of random pairs within the
threshold is measured by brute force on a sample and extrapolated (64-bit hashes
within 8 bits: ~2.8e-10 of all pairs, so ~125 random pairs at 1M are true near-duplicates
by the hash, and DedupeNear is right to group them).

    .venv/bin/python bench/dedupe_scale.py [--sizes 100000 1000000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
import time
from collections import defaultdict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import apache_beam as beam  # noqa: E402

from filters.dedupe_policy import SurvivorPolicy  # noqa: E402
from pipeline.config import load_config  # noqa: E402
from pipeline.specs import lsh_spec  # noqa: E402
from pipeline.metrics import NAMESPACE, Counter  # noqa: E402
from pipeline.records import AltPair, ResizedImage  # noqa: E402
from pipeline.runners import make_options, make_runner  # noqa: E402
from transforms.dedupe import DedupeNear  # noqa: E402
from transforms.lsh import HASH_BITS, LshSpec, candidate_probability, connected_components  # noqa: E402

MAX_RATIO = 12.0
FAMILY_FRACTION = 0.05
UNDER = (2, 4, 6, 8)  # variant distances from the base, within the threshold
OVER = (12, 16)
SHARDS = 64
_SURVIVOR = re.compile(r"duplicate of (\S+) \(group of \d+\)")


def _flip(value: int, bits: np.ndarray) -> int:
    for bit in bits:
        value ^= 1 << int(bit)
    return value


def synthetic(n: int, seed: int = 0):
    """(hashes, families: list of index lists, planted: bool mask) for n images."""
    rng = np.random.default_rng(seed)
    hashes = [int(h) for h in rng.integers(0, 2**63, size=n, dtype=np.uint64) * np.uint64(2)
              + rng.integers(0, 2, size=n, dtype=np.uint64)]
    size = 5
    count = int(n * FAMILY_FRACTION) // size
    members = rng.permutation(n)[:count * size].reshape(count, size)
    for base, *variants in members.tolist():
        distances = list(rng.choice(UNDER, size=size - 2)) + [int(rng.choice(OVER))]
        for index, distance in zip(variants, distances):
            hashes[index] = _flip(hashes[base], rng.choice(HASH_BITS, size=distance, replace=False))
    planted = np.zeros(n, bool)
    planted[members.ravel()] = True
    return hashes, members.tolist(), planted


def true_pairs(hashes, families, threshold: int) -> set:
    """Pairs (i < j) in one family's components within the threshold."""
    out = set()
    for family in families:
        edges = [(a, b) for x, a in enumerate(family) for b in family[x + 1:]
                 if bin(hashes[a] ^ hashes[b]).count("1") <= threshold]
        groups = defaultdict(list)
        for node, root in connected_components(edges).items():
            groups[root].append(node)
        for group in groups.values():
            group.sort()
            out.update((a, b) for x, a in enumerate(group) for b in group[x + 1:])
    return out


def _records(shard, hashes):
    for i in range(shard, len(hashes), SHARDS):
        yield ResizedImage(pair=AltPair(f"{i:08d}", "http://b/p", f"http://b/{i}.jpg", "a b c"), data=b"", ext="jpg",
                           width=1, height=1, original_width=1, original_height=1, sha256="",
                           phash=f"{hashes[i]:016x}", colour_sig="80" * 12)


def _write(rows, path):
    with open(path, "w") as f:
        json.dump(rows, f)


def run_dedupe(hashes, spec: LshSpec, cc_rounds: int, out: str) -> tuple[float, dict, int]:
    """(seconds, {member: survivor}, residual pairs) of DedupeNear over the hashes."""
    options = make_options([])
    start = time.perf_counter()
    pipeline = beam.Pipeline(runner=make_runner(options), options=options)
    records = pipeline | "Shards" >> beam.Create(range(SHARDS)) | "Records" >> beam.FlatMap(_records, hashes)
    _kept, rejected = records | "DedupeNear" >> DedupeNear(spec, SurvivorPolicy("first_by_key"), cc_rounds)
    _ = (rejected | "Detail" >> beam.Map(lambda r: (r.key, r.detail)) | "All" >> beam.combiners.ToList()
         | "Write" >> beam.Map(_write, out))
    result = pipeline.run()
    result.wait_until_finish()
    seconds = time.perf_counter() - start
    residual = sum(c.committed for c in result.metrics().query()["counters"]
                   if c.key.metric.namespace == NAMESPACE and c.key.metric.name == Counter.NEAR_CC_RESIDUAL.value)
    with open(out) as f:
        survivor = {int(key): int(_SURVIVOR.fullmatch(detail).group(1)) for key, detail in json.load(f)}
    return seconds, survivor, residual


def score(survivor: dict, truth: set, planted: np.ndarray) -> dict:
    groups = defaultdict(set)
    for member, root in survivor.items():
        groups[root].update((member, root))
    found = set()
    for group in groups.values():
        group = sorted(group)
        found.update((a, b) for x, a in enumerate(group) for b in group[x + 1:])
    hits = len(found & truth)
    grouped = {i for group in groups.values() for i in group}
    return {"recall": hits / max(1, len(truth)), "precision": hits / max(1, len(found)),
            "random_grouped": sum(1 for i in grouped if not planted[i]),
            "random_pairs": sum(1 for a, b in found if not planted[a] and not planted[b])}


def base_rate(hashes, planted, threshold: int, sample: int = 20_000, seed: int = 1) -> tuple[int, int, float]:
    """(random pairs within the threshold in a brute-force sample, pairs in the sample,
    expected number over all random pairs)."""
    rng = np.random.default_rng(seed)
    pool = np.nonzero(~planted)[0]
    chosen = np.array([hashes[i] for i in rng.choice(pool, size=min(sample, len(pool)), replace=False)], np.uint64)
    close = 0
    for start in range(0, len(chosen), 1000):
        block = np.bitwise_count(chosen[start:start + 1000, None] ^ chosen[None, :])
        rows = np.arange(start, start + len(block))[:, None]
        close += int(((block <= threshold) & (np.arange(len(chosen))[None, :] > rows)).sum())
    p = sum(math.comb(HASH_BITS, k) for k in range(threshold + 1)) / 2.0**HASH_BITS
    return close, len(chosen) * (len(chosen) - 1) // 2, p * len(pool) * (len(pool) - 1) / 2


def run_size(n: int, spec: LshSpec, cc_rounds: int) -> dict:
    hashes, families, planted = synthetic(n)
    truth = true_pairs(hashes, families, spec.threshold)
    with tempfile.TemporaryDirectory() as tmp:
        seconds, survivor, residual = run_dedupe(hashes, spec, cc_rounds, os.path.join(tmp, "rejected.json"))
    sampled, pairs, expected = base_rate(hashes, planted, spec.threshold)
    return {"n": n, "seconds": seconds, "residual": residual, "truth": len(truth), "sampled": sampled,
            "sampled_pairs": pairs, "expected_random": expected, **score(survivor, truth, planted)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=(100_000, 1_000_000))
    args = parser.parse_args()
    cfg = load_config()
    spec, cc_rounds = lsh_spec(cfg), cfg.dedupe.near_cc_rounds
    predicted = " ".join(f"d{d}:{candidate_probability(d, spec):.3f}" for d in UNDER)
    print(f"DedupeNear on the FnApiRunner: LSH {spec.rounds} rounds x {spec.bands} bands, threshold {spec.threshold} "
          f"bits, {cc_rounds} component rounds; planted families of 5 (variants at {UNDER} and {OVER} bits); "
          f"P(candidate) {predicted}", flush=True)
    results = []
    for n in args.sizes:
        r = run_size(n, spec, cc_rounds)
        results.append(r)
        print(f"{r['n']:>9,} images: {r['seconds']:7.1f} s ({r['n'] / r['seconds']:,.0f}/s)  planted pairs {r['truth']:,}: "
              f"recall {r['recall']:.4f} precision {r['precision']:.4f}  random images grouped {r['random_grouped']} "
              f"(random pairs {r['random_pairs']}; base rate: {r['sampled']} within {spec.threshold} bits among "
              f"{r['sampled_pairs']:.1e} sampled pairs, {r['expected_random']:.1f} expected over all)  residual pairs {r['residual']}",
              flush=True)
    small, large = results
    ratio = large["seconds"] / small["seconds"]
    growth = large["n"] / small["n"]
    print(f"time ratio {ratio:.2f}x for {growth:.0f}x the images (limit {MAX_RATIO:.0f}x): "
          f"{'OK' if ratio <= MAX_RATIO else 'TOO SLOW'}")
    return 0 if ratio <= MAX_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
