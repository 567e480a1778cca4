"""transforms.semantic_dedupe: spherical k-means, the within-cluster greedy rule, the Beam stage."""

import apache_beam as beam
import numpy as np
from apache_beam.testing.util import assert_that, equal_to

from pipeline.specs import semantic_spec
from tests.default_specs import spec_with
from filters.dedupe_policy import SurvivorPolicy
from pipeline.records import AltPair, ResizedImage, ScoredImage
from tests.conftest import counter, local_test_pipeline
from transforms.semantic_dedupe import SemanticDedupe, semantic_duplicates, spherical_kmeans


def _unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def test_kmeans_is_deterministic_and_separates_clusters():
    rng = np.random.default_rng(0)
    centres = np.eye(4)
    x = np.concatenate([c + 0.05 * rng.normal(size=(50, 4)) for c in centres])
    a, b = spherical_kmeans(x, 4, seed=0), spherical_kmeans(x, 4, seed=0)
    assert np.array_equal(a, b) and a.shape == (4, 4)
    labels = np.argmax(x @ a.T, axis=1)
    assert len(set(labels[:50])) == 1 and len(set(labels)) == 4
    assert spherical_kmeans(np.ones((3, 4)), 8).shape == (1, 4)  # k capped by distinct points


def test_kmeans_gives_the_same_bytes_on_one_thread_and_on_all():
    import faiss

    rng = np.random.default_rng(2)
    x = rng.normal(size=(3000, 32)).astype(np.float32)
    threads = faiss.omp_get_max_threads()
    try:
        faiss.omp_set_num_threads(1)
        one = spherical_kmeans(x, 16, seed=3)
    finally:
        faiss.omp_set_num_threads(threads)
    assert spherical_kmeans(x, 16, seed=3).tobytes() == one.tobytes()
    assert np.allclose(np.linalg.norm(one, axis=1), 1.0, atol=1e-5)  # unit centroids
    assert not np.array_equal(spherical_kmeans(x, 16, seed=4), one)  # the seed is used


def test_greedy_rule_keeps_first_of_each_near_copy():
    base = _unit([1, 0, 0, 0])
    rows = [base, _unit([1, 0.05, 0, 0]), _unit([0, 1, 0, 0]), _unit([1, 0.02, 0.02, 0])]
    dropped = semantic_duplicates(np.array(rows), eps=0.01)
    assert [(i, j) for i, j, _ in dropped] == [(1, 0), (3, 0)]
    assert all(c > 0.99 for _, _, c in dropped)
    assert semantic_duplicates(np.array(rows), eps=0.0001) == []


def _scored(key, vector, score=0.5):
    pair = AltPair(key=key, page_url="http://s/p", image_url=f"http://s/{key}.jpg", caption="a b c")
    image = ResizedImage(pair=pair, data=b"", ext="jpg", width=1, height=1, original_width=1, original_height=1,
                         sha256="")
    return ScoredImage(image=image, clip_score=score, image_embedding=_unit(vector).astype("<f2").tobytes())


def test_semantic_dedupe_stage_with_policy_and_metrics():
    records = [_scored("a", [1, 0, 0, 0], 0.3), _scored("b", [1, 0.03, 0, 0], 0.9), _scored("c", [0, 1, 0, 0]),
               _scored("d", [0, 0, 1, 0]), ScoredImage(image=_scored("e", [1, 0, 0, 0]).image, clip_score=0.4)]
    p = local_test_pipeline()
    kept, rejected = p | beam.Create(records) | SemanticDedupe(spec_with(semantic_spec, eps=0.01, clusters=3),
                                                               SurvivorPolicy("best_clip_score"))
    assert_that(kept | "K" >> beam.Map(lambda s: s.image.pair.key), equal_to(["b", "c", "d", "e"]), label="kept")
    assert_that(rejected | "R" >> beam.Map(lambda r: (r.key, r.reason, r.detail.split(" (")[0])),
                equal_to([("a", "dedupe.semantic", "cosine 0.9996 to b")]), label="rejected")
    result = p.run()
    result.wait_until_finish()
    assert counter(result, "dedupe.semantic") == 1


def test_sample_cut_keeps_the_smallest_hashes_and_bounds_the_rest():
    import zlib

    from transforms.semantic_dedupe import sample_cut

    hashes = sorted(zlib.crc32(f"{i:020x}".encode()) for i in range(20000))
    for sample in (1, 10, 500):
        cut = sample_cut(len(hashes), sample)
        under = [h for h in hashes if h < cut]
        assert under[:sample] == hashes[:sample]  # the same sample as over everything
        assert len(under) <= 3 * sample + 8 * int(sample ** 0.5) + 200  # ~2 x sample, not all 20,000
    assert sample_cut(100, 50) == 2 ** 32  # a small input is taken whole
    assert sample_cut(0, 50) == 2 ** 32


def test_stage_fits_on_the_same_sample_when_the_cut_applies():
    from collections import defaultdict

    from transforms.semantic_dedupe import _assign, _fit, _sample_key, sample_cut

    rng = np.random.default_rng(1)
    records = [_scored(f"{i:04x}", rng.normal(size=4)) for i in range(400)]
    spec, policy = spec_with(semantic_spec, eps=0.03, clusters=4, sample=20), SurvivorPolicy("first_by_key")
    assert sample_cut(len(records), spec.sample) < 2 ** 32  # the stage filters before Top.Smallest
    # What the stage must compute: k-means on the 20 smallest key hashes of the whole input.
    centroids = _fit(sorted((_sample_key(r), r.image.pair.key, r.image_embedding) for r in records)[:20], spec)
    clusters = defaultdict(list)
    for r in records:
        cluster, _ = _assign(r, centroids)
        clusters[cluster].append(r)
    expected_dropped = set()
    for members in clusters.values():
        members = sorted(members, key=policy)
        vectors = np.stack([np.frombuffer(m.image_embedding, "<f2").astype(np.float32) for m in members])
        expected_dropped |= {members[i].image.pair.key for i, _, _ in semantic_duplicates(vectors, spec.eps)}
    assert expected_dropped  # the case says something
    p = local_test_pipeline()
    kept, rejected = p | beam.Create(records) | SemanticDedupe(spec, policy)
    assert_that(rejected | "R" >> beam.Map(lambda r: r.key), equal_to(sorted(expected_dropped)), label="rejected")
    assert_that(kept | "K" >> beam.Map(lambda s: s.image.pair.key),
                equal_to([r.image.pair.key for r in records if r.image.pair.key not in expected_dropped]),
                label="kept")
    p.run().wait_until_finish()
