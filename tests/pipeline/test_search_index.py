"""pipeline.search_index: exact top-k order and ties, k beyond n, the HNSW index against exact, its cache."""

import numpy as np
import pytest

from pipeline.search_index import EmbeddingIndex, SearchInputError, exact_top_k


def _normalised(n, d, seed=0):
    m = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_exact_top_k_is_sorted_with_ties_by_row():
    matrix = np.array([[1, 0], [0, 1], [1, 0], [0.6, 0.8]], np.float32)
    sims, idx = exact_top_k(matrix, np.array([[1, 0]], np.float32), 3)
    assert idx.tolist() == [[0, 2, 3]]
    np.testing.assert_allclose(sims, [[1, 1, 0.6]], rtol=1e-6)
    sims, idx = exact_top_k(matrix, np.array([[0, 1]], np.float32), 10)  # k > n: all rows
    assert idx.tolist() == [[1, 3, 0, 2]]


def test_exact_matches_brute_force():
    matrix, queries = _normalised(500, 32), _normalised(7, 32, seed=1)
    _, idx = EmbeddingIndex([str(i) for i in range(500)], matrix).search(queries, 10)
    brute = np.argsort(-(queries @ matrix.T), axis=1, kind="stable")[:, :10]
    assert idx.tolist() == brute.tolist()


def test_hnsw_recall_against_exact_and_cache(tmp_path):
    matrix, queries = _normalised(3000, 64), _normalised(50, 64, seed=2)
    keys = [f"{i:05x}" for i in range(3000)]
    exact = EmbeddingIndex(keys, matrix)
    approx = EmbeddingIndex(keys, matrix, exact_max=1000, cache_dir=str(tmp_path))
    assert exact.method == "exact" and approx.method == "hnsw"
    _, e = exact.search(queries, 10)
    _, a = approx.search(queries, 10)
    recall = np.mean([len(set(x) & set(y)) / 10 for x, y in zip(e, a)])
    assert recall >= 0.95
    cached = list(tmp_path.glob("hnsw-*.faiss"))
    assert len(cached) == 1
    _, again = EmbeddingIndex(keys, matrix, exact_max=1000, cache_dir=str(tmp_path)).search(queries, 10)
    assert again.tolist() == a.tolist()
    EmbeddingIndex(keys[:-1] + ["other"], matrix, exact_max=1000, cache_dir=str(tmp_path))
    assert len(list(tmp_path.glob("hnsw-*.faiss"))) == 2  # other keys: another cache file


def test_bad_queries():
    index = EmbeddingIndex(["a", "b"], _normalised(2, 8))
    with pytest.raises(SearchInputError, match="k must be"):
        index.search(_normalised(1, 8), 0)
    with pytest.raises(SearchInputError, match="dimensions"):
        index.search(_normalised(1, 4), 1)
    with pytest.raises(ValueError, match="keys but"):
        EmbeddingIndex(["a"], _normalised(2, 8))
