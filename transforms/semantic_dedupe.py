"""SemanticDedupe (SemDeDup): drop images whose CLIP embedding nearly repeats a kept one's.

Input: ``ScoredImage`` with ``image_embedding`` (after ClipThreshold). Output:
``(kept, rejected)``; a dropped image gets ``dedupe.semantic`` with the cosine and
the key of the kept image it repeats. Images without an embedding pass through.

As in SemDeDup (Abbas et al., 2023): cluster the embeddings with k-means, then within
each cluster, walk the images in survivor-policy order and drop an image whose cosine
similarity to an already kept image of its cluster exceeds ``1 - eps``. Clustering
keeps the pairwise work to the clusters (n²/k instead of n²).

At Beam scale: k-means (faiss, spherical) is fitted on a deterministic sample (the
``sample`` images with the smallest key hashes) on one worker; the centroids go to
every worker as a side input; images are grouped by nearest centroid and each
cluster is deduplicated on its own. Off by default (``dedupe.semantic``).

Keys at 100M pairs: ``Sample`` is a ``Top.Smallest``, a global combine whose bundles each send
up to ``sample`` (key hash, key, embedding) tuples of ~1 KB to one key (a bundle smaller than
that sends all of its tuples: up to every image's, tens of GB). So the tuples are cut first to
the key hashes under ``sample_cut`` (~2 x ``sample`` of them, from a ``Count.Globally``, lifted):
~100 MB reach that key at the default 50,000, and the sample is the same. The centroids side
input is ``clusters x 512`` floats. ``GroupCluster``'s largest key is the largest
cluster: n / ``clusters`` on average and more for a popular theme, i.e. at least 360k of the
~23M images ClipThreshold keeps (docs/scale.md's funnel) at the default 64 clusters. That does
not fit: ``semantic_duplicates`` builds the cluster's n x n similarity matrix (360k^2 float32 is
0.5 TB) on one worker. At scale
``clusters`` must grow with the data (SemDeDup used 50,000 clusters for LAION-440M: ~9k images
per cluster, a 0.3 GB matrix), see docs/scale.md "What would break first".
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Callable

import apache_beam as beam
import faiss
import numpy as np

from pipeline import metrics
from pipeline.records import DropReason, Rejection, ScoredImage, pair_of
from transforms.embeddings import decode

KMEANS_ITERATIONS = 25  # faiss k-means iterations (SemanticSpec.iterations)
KMEANS_SEED = 0  # k-means++ seeding (SemanticSpec.seed)


@dataclass(frozen=True)
class SemanticSpec:
    eps: float  # drop when cosine > 1 - eps (dedupe.semantic_eps)
    clusters: int  # dedupe.semantic_clusters
    sample: int  # images k-means is fitted on (dedupe.semantic_sample)
    iterations: int  # k-means iterations (not a knob: pipeline/specs.py passes KMEANS_ITERATIONS)
    seed: int  # k-means++ seeding (not a knob: pipeline/specs.py passes KMEANS_SEED)


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def spherical_kmeans(x: np.ndarray, k: int, iterations: int = KMEANS_ITERATIONS,
                     seed: int = KMEANS_SEED) -> np.ndarray:
    """``[k', d]`` unit centroids (k' = min(k, distinct rows)): faiss's spherical k-means, as
    SemDeDup fits it, with k-means++ seeding from ``seed`` (random seeding can leave two
    centroids in one true cluster). Deterministic: faiss's updates are per centroid, so reruns
    and thread counts give the same bytes (tests/transforms/test_semantic_dedupe.py)."""
    x = np.ascontiguousarray(_normalise(np.asarray(x, dtype=np.float32)))
    k = max(1, min(k, len(np.unique(x, axis=0))))
    kmeans = faiss.Kmeans(
        x.shape[1], k, niter=iterations, seed=seed, spherical=True,
        init_method=faiss.ClusteringInitMethod_KMEANS_PLUS_PLUS,
        # every row of the (already deterministic) sample, not faiss's subsample of 256 per centroid;
        # and no warning on stderr for a small sample
        max_points_per_centroid=max(256, -(-len(x) // k)), min_points_per_centroid=1,
    )
    kmeans.train(x)
    return _normalise(kmeans.centroids).astype(np.float32)


def semantic_duplicates(vectors: np.ndarray, eps: float) -> list[tuple[int, int, float]]:
    """Greedy within one cluster, rows in survivor order: ``(dropped row, kept row, cosine)``."""
    x = _normalise(np.asarray(vectors, dtype=np.float32))
    sims = x @ x.T
    kept: list[int] = []
    dropped = []
    for i in range(len(x)):
        if kept:
            row = sims[i, kept]
            j = int(np.argmax(row))
            if row[j] > 1.0 - eps:
                dropped.append((i, kept[j], float(row[j])))
                continue
        kept.append(i)
    return dropped


def _sample_key(record: ScoredImage) -> int:
    return zlib.crc32(record.image.pair.key.encode("utf-8"))


def sample_cut(n: int, sample: int) -> int:
    """The crc32 bound under which the fitting sample is taken, for ``n`` images with embeddings.

    Key hashes are uniform in [0, 2^32), so ~``want`` = 2 x ``sample`` + a wide margin of the
    ``n`` fall under it (2^32, everything, when ``want`` >= ``n``). The ``sample`` smallest
    hashes are then all under it unless fewer than ``sample`` are (a tail probability below
    e^-64), so ``Top.Smallest`` over the cut picks what it would pick over everything, while
    the global combine is handed ~2 x ``sample`` tuples instead of up to ``sample`` per bundle.
    """
    want = 2 * sample + 8 * math.isqrt(max(0, sample)) + 64
    if n <= 0 or want >= n:
        return 2 ** 32
    return -(-want * 2 ** 32 // n)


def _fit(sampled, spec: SemanticSpec):
    if not sampled:
        return np.empty((0, 0), dtype=np.float32)
    ordered = sorted(sampled)  # (crc, key, embedding): the same order on every run
    return spherical_kmeans(np.stack([decode(e) for _, _, e in ordered]).astype(np.float32),
                            spec.clusters, spec.iterations, spec.seed)


def _assign(record: ScoredImage, centroids: np.ndarray):
    if not record.image_embedding or centroids.size == 0:
        return -1, record
    return int(np.argmax(centroids @ decode(record.image_embedding).astype(np.float32))), record


class _DedupeClusterFn(beam.DoFn):
    def __init__(self, spec: SemanticSpec, rank: Callable):
        self.spec, self.rank = spec, rank

    def process(self, cluster_and_records):
        cluster, records = cluster_and_records
        records = sorted(records, key=self.rank)
        if cluster < 0:  # no embedding: nothing to compare
            yield from records
            return
        vectors = np.stack([decode(r.image_embedding).astype(np.float32) for r in records])
        dropped = {i: (j, cos) for i, j, cos in semantic_duplicates(vectors, self.spec.eps)}
        for i, record in enumerate(records):
            if i not in dropped:
                yield record
                continue
            j, cos = dropped[i]
            metrics.inc_reason(DropReason.DEDUPE_SEMANTIC)
            yield beam.pvalue.TaggedOutput("rejected", Rejection.of(
                pair_of(record), DropReason.DEDUPE_SEMANTIC,
                f"cosine {cos:.4f} to {records[j].image.pair.key} (cluster {cluster})"))


class SemanticDedupe(beam.PTransform):
    """ScoredImage -> (kept, Rejection dedupe.semantic). ``rank``: survivor policy, smallest kept."""

    def __init__(self, spec: SemanticSpec, rank: Callable):
        super().__init__()
        self.spec, self.rank = spec, rank

    def expand(self, scored):
        keys = scored | "SampleKeys" >> beam.FlatMap(
            lambda r: [(_sample_key(r), r.image.pair.key, r.image_embedding)] if r.image_embedding else [])
        count = keys | "CountEmbedded" >> beam.combiners.Count.Globally()
        centroids = (
            keys
            | "UnderSampleCut" >> beam.Filter(lambda t, n, sample: t[0] < sample_cut(n, sample),
                                              n=beam.pvalue.AsSingleton(count), sample=self.spec.sample)
            | "Sample" >> beam.combiners.Top.Smallest(self.spec.sample)
            | "FitKMeans" >> beam.Map(_fit, self.spec)
        )
        out = (
            scored
            | "AssignCluster" >> beam.Map(_assign, beam.pvalue.AsSingleton(centroids))
            | "GroupCluster" >> beam.GroupByKey()
            | "DedupeCluster" >> beam.ParDo(_DedupeClusterFn(self.spec, self.rank)).with_outputs(
                "rejected", main="kept")
        )
        return out.kept, out.rejected
