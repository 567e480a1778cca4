"""transforms.embeddings: float16 vectors with keys, written per hash bucket; read back exactly."""

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
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
    # float32, as the shards: these scores are float64 products, so they come back rounded to float32
    # (ScoreClip's own scores are float32 values: exact)
    assert table.schema.field("clip_score").type == pa.float32()
    assert table.column("clip_score").to_pylist() == [float(np.float32(by_key[k].clip_score))
                                                      for k in table.column("key").to_pylist()]
    assert table.column("kept").to_pylist() == [None] * 5  # no kept samples given


def test_float32_scores_are_exact():
    score = float(np.float32(0.318))
    record = _scored(0)
    table = embeddings_table([ScoredImage(image=record.image, clip_score=score, clip_model="m",
                                          image_embedding=record.image_embedding,
                                          text_embedding=record.text_embedding)])
    assert table.column("clip_score").to_pylist() == [score]


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
    assert table.column("kept").null_count == 25  # only scored records given: kept unknown


def test_kept_column_marks_the_kept_samples(tmp_path):
    records = [_scored(i) for i in range(25)]
    kept = records[::3] + [_scored(99, with_vectors=False)]  # a kept sample without vectors has no row
    with local_test_pipeline() as p:
        _ = {"scored": p | "S" >> beam.Create(records), "kept": p | "K" >> beam.Create(kept)} | WriteEmbeddings(
            str(tmp_path), 10)
    table = read_embeddings(str(tmp_path))
    got = dict(zip(table.column("key").to_pylist(), table.column("kept").to_pylist()))
    assert got == {r.image.pair.key: i % 3 == 0 for i, r in enumerate(records)}


def test_old_files_read_beside_new_ones(tmp_path):
    """Files from before ``kept`` (float64 scores, no kept column) read with new ones."""
    directory = tmp_path / EMBEDDINGS_DIR
    directory.mkdir()
    new = embeddings_table([_scored(1)], kept={_scored(1).image.pair.key})
    old = new.drop_columns(["kept"]).set_column(2, "clip_score", new.column("clip_score").cast(pa.float64()))
    pq.write_table(old, directory / "00000.parquet")
    pq.write_table(new, directory / "00001.parquet")
    table = read_embeddings(str(tmp_path))
    assert table.num_rows == 2 and table.column("kept").to_pylist() == [None, True]
    assert table.column("clip_score").to_pylist()[0] == table.column("clip_score").to_pylist()[1]
