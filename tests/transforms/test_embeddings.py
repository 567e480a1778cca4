"""transforms.embeddings: float16 vectors with keys, written per hash bucket; read back exactly."""

import apache_beam as beam
import numpy as np
import pytest

from pipeline.records import AltPair, ResizedImage, ScoredImage, make_key
from tests.conftest import local_test_pipeline
from transforms.embeddings import (EMBEDDINGS_DIR, WriteEmbeddings, as_matrix, decode, embeddings_table,
                                   read_embeddings)


def _scored(i, dim=8, with_vectors=True):
    rng = np.random.default_rng(i)
    img, txt = (v / np.linalg.norm(v) for v in rng.normal(size=(2, dim)))
    pair = AltPair(key=make_key("http://s/p", i), page_url="http://s/p", image_url=f"http://s/{i}.jpg", caption="c")
    image = ResizedImage(pair=pair, data=b"", ext="jpg", width=1, height=1, original_width=1, original_height=1,
                         sha256="")
    if not with_vectors:
        return ScoredImage(image=image)
    return ScoredImage(image=image, clip_score=float(img @ txt), clip_model="m",
                       image_embedding=img.astype("<f2").tobytes(), text_embedding=txt.astype("<f2").tobytes())


def test_table_is_sorted_float16_and_exact():
    records = [_scored(i) for i in range(5)]
    table = embeddings_table(list(reversed(records)))
    assert table.column("key").to_pylist() == sorted(r.image.pair.key for r in records)
    kind = table.schema.field("image_embedding").type
    assert kind.list_size == 8 and str(kind.value_type) == "halffloat"
    by_key = {r.image.pair.key: r for r in records}
    matrix = as_matrix(table.column("image_embedding"))
    for row, key in zip(matrix, table.column("key").to_pylist()):
        assert row.astype("<f2").tobytes() == by_key[key].image_embedding
        assert np.array_equal(decode(by_key[key].image_embedding), row.astype(np.float16))
    assert table.column("clip_score").to_pylist() == [by_key[k].clip_score for k in table.column("key").to_pylist()]


def test_mixed_dimensions_are_a_bug():
    with pytest.raises(ValueError, match="one dimension"):
        embeddings_table([_scored(0, dim=8), _scored(1, dim=4)])


def test_write_embeddings_pipeline(tmp_path):
    records = [_scored(i) for i in range(25)] + [_scored(99, with_vectors=False)]
    with local_test_pipeline() as p:
        _ = p | beam.Create(records) | WriteEmbeddings(str(tmp_path), 10)
    files = sorted((tmp_path / EMBEDDINGS_DIR).iterdir())
    assert [f.name for f in files] == ["00000.parquet", "00001.parquet", "00002.parquet"]
    table = read_embeddings(str(tmp_path))
    assert sorted(table.column("key").to_pylist()) == sorted(r.image.pair.key for r in records[:25])
    assert not list(tmp_path.rglob("*.tmp-*"))
    assert read_embeddings(str(tmp_path / "none")).num_rows == 0
