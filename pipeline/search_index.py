"""The nearest-neighbour index behind ``wit search``: exact numpy top-k, or faiss HNSW beyond a size.

Input: keys and their L2-normalised embeddings ``[n, d]``; query embeddings
``[q, d]``. Output: ``(similarities [q, k], row indices [q, k])``, best first, ``-1``
for missing rows when ``k > n``. Nothing is dropped.

Up to ``exact_max`` rows (1M by default: a 512-d float32 matrix of 2 GB; measured on
2 shared CPU cores, 100 queries over 100k rows take 1.2 s, about 12 ms each) the search
is exact. Beyond, an HNSW graph (faiss ``IndexHNSWFlat``, inner product = cosine on
normalised vectors, M=32, efSearch = max(128, 2k)); building it is slow (about 5 min
per 100k 512-d rows on those 2 cores), so it is written to ``cache_dir`` and reused
while the output's kept keys are unchanged (the file name carries a hash of them).
"""

from __future__ import annotations

import hashlib
import logging
import os
from typing import Optional, Sequence

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_EXACT_MAX = 1_000_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80


class SearchInputError(ValueError):
    """The output cannot be searched (no embeddings, no model, a bad query)."""


def exact_top_k(matrix: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine top-k (rows normalised): argpartition, then sort the k; ties by row index."""
    sims = queries @ matrix.T
    k_eff = min(k, matrix.shape[0])
    if k_eff == 0:
        return np.empty((len(queries), 0), np.float32), np.empty((len(queries), 0), np.int64)
    part = np.argpartition(-sims, k_eff - 1, axis=1)[:, :k_eff]
    out_s, out_i = [], []
    for row, cand in zip(sims, part):
        order = sorted(cand, key=lambda i: (-row[i], i))
        out_i.append(order)
        out_s.append(row[order])
    return np.asarray(out_s, np.float32), np.asarray(out_i, np.int64)


class EmbeddingIndex:
    """Exact below ``exact_max`` rows, HNSW (faiss) above."""

    def __init__(self, keys: Sequence[str], matrix: np.ndarray, exact_max: int = DEFAULT_EXACT_MAX,
                 cache_dir: Optional[str] = None):
        if len(keys) != len(matrix):
            raise ValueError(f"{len(keys)} keys but {len(matrix)} embeddings")
        self.keys = list(keys)
        self.matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self.method = "exact" if len(keys) <= exact_max else "hnsw"
        self._hnsw = self._load_or_build(cache_dir) if self.method == "hnsw" else None

    @property
    def dim(self) -> int:
        return self.matrix.shape[1] if self.matrix.ndim == 2 else 0

    def _cache_path(self, cache_dir: str) -> str:
        digest = hashlib.sha1("\n".join(self.keys).encode("utf-8")).hexdigest()[:16]
        return os.path.join(cache_dir, f"hnsw-m{HNSW_M}-{len(self.keys)}-{digest}.faiss")

    def _load_or_build(self, cache_dir: Optional[str]):
        import faiss

        path = self._cache_path(cache_dir) if cache_dir else None
        if path and os.path.exists(path):
            log.info("search: reusing the HNSW index %s", path)
            return faiss.read_index(path)
        log.info("search: building an HNSW index over %d embeddings (once; cached)", len(self.keys))
        index = faiss.IndexHNSWFlat(self.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.add(self.matrix)
        if path:
            os.makedirs(cache_dir, exist_ok=True)
            tmp = f"{path}.tmp-{os.getpid()}"
            faiss.write_index(index, tmp)
            os.replace(tmp, path)
        return index

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, row indices), each ``[q, min(k, n)]``, best first."""
        if k < 1:
            raise SearchInputError(f"k must be >= 1, got {k}")
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if self.keys and queries.shape[1] != self.dim:
            raise SearchInputError(f"query embedding has {queries.shape[1]} dimensions, the output's "
                                   f"{self.dim} (another model?)")
        if self.method == "exact":
            return exact_top_k(self.matrix, queries, k)
        self._hnsw.hnsw.efSearch = max(128, 2 * k)
        sims, idx = self._hnsw.search(queries, min(k, len(self.keys)))
        return sims, idx.astype(np.int64)
