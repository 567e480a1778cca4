"""WriteEmbeddings: CLIP image and text embeddings of every scored sample, for re-filtering later.

Input: ``ScoredImage`` (everything ScoreClip scored: kept, below the threshold or
deduplicated after scoring). Output files ``OUT/embeddings/NNNNN.parquet``, one row
per sample: ``key``, ``clip_model``, ``clip_score`` (float64, exactly the score the
threshold saw), ``image_embedding`` and ``text_embedding`` (``fixed_size_list<float16>``,
L2-normalised). Rows sorted by key within a file, files are hash buckets of the key
(as the shards), written under a temporary name and renamed. Nothing is dropped;
unscored records (``score.enabled: false``) write nothing.

Readers: ``read_embeddings`` (pyarrow table) and ``as_matrix`` (numpy float32).
``wit refilter`` re-thresholds from ``clip_score`` and semantic dedupe reads the
image embeddings; neither needs the model again.

Keys at 100M pairs: the row count is a ``Count.Globally`` (combined on each worker before the
shuffle); ``GroupByEmbeddingFile`` keys by file bucket, so its largest key is one file's rows:
``rows_per_file`` (build.py passes ``output.samples_per_shard``, 10,000) ScoredImages of ~1.9 KB
each with ViT-B-32's two 512-d float16 embeddings (bench/record_sizes.py): ~19 MB, whatever the
run's size.
"""

from __future__ import annotations

import glob
import io
import os
from typing import Sequence

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipeline import shard_format
from pipeline.records import ScoredImage
from transforms.write_shards import bucket_of, write_atomically

EMBEDDINGS_DIR = "embeddings"
EMBEDDING_DTYPE = "<f2"  # little-endian float16: the bytes ScoredImage carries


def decode(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=EMBEDDING_DTYPE)


def _vectors(blobs: Sequence[bytes], dim: int) -> pa.Array:
    flat = np.frombuffer(b"".join(blobs), dtype=EMBEDDING_DTYPE) if blobs else np.empty(0, EMBEDDING_DTYPE)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat.astype(np.float16), type=pa.float16()), dim)


def embeddings_table(records: Sequence[ScoredImage]) -> pa.Table:
    """One row per record, sorted by key."""
    records = sorted(records, key=lambda r: r.image.pair.key)
    dims = {len(r.image_embedding) // 2 for r in records} | {len(r.text_embedding) // 2 for r in records}
    if len(dims) != 1:
        raise ValueError(f"embeddings of one output must share one dimension, got {sorted(dims)}")
    dim = dims.pop()
    return pa.table({
        "key": pa.array([r.image.pair.key for r in records], type=pa.string()),
        "clip_model": pa.array([r.clip_model for r in records], type=pa.string()),
        "clip_score": pa.array([r.clip_score for r in records], type=pa.float64()),
        "image_embedding": _vectors([r.image_embedding for r in records], dim),
        "text_embedding": _vectors([r.text_embedding for r in records], dim),
    })


def table_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


class _WriteEmbeddingFileFn(beam.DoFn):
    def __init__(self, directory: str):
        self.directory = directory

    def process(self, bucket_and_records):
        bucket, records = bucket_and_records
        name = f"{shard_format.shard_name(bucket)}.parquet"
        write_atomically(FileSystems.join(self.directory, name), table_bytes(embeddings_table(list(records))))
        yield name


def _has_embeddings(record: ScoredImage) -> bool:
    return bool(record.image_embedding) and bool(record.text_embedding)


class WriteEmbeddings(beam.PTransform):
    """ScoredImage -> OUT/embeddings/NNNNN.parquet; emits the file names."""

    def __init__(self, output_dir: str, rows_per_file: int):
        super().__init__()
        self.directory = FileSystems.join(output_dir, EMBEDDINGS_DIR)
        self.rows_per_file = rows_per_file

    def expand(self, scored):
        with_vectors = scored | "WithEmbeddings" >> beam.Filter(_has_embeddings)
        count = with_vectors | "CountEmbeddings" >> beam.combiners.Count.Globally()
        return (
            with_vectors
            | "AssignEmbeddingFile" >> beam.Map(
                lambda r, n, per: (bucket_of(r.image.pair.key, n, per), r),
                n=beam.pvalue.AsSingleton(count), per=self.rows_per_file)
            | "GroupByEmbeddingFile" >> beam.GroupByKey()
            | "WriteEmbeddingFile" >> beam.ParDo(_WriteEmbeddingFileFn(self.directory))
        )


def read_embeddings(output_dir: str) -> pa.Table:
    """Every embeddings row of a local output directory (empty table when there are none)."""
    paths = sorted(glob.glob(os.path.join(output_dir, EMBEDDINGS_DIR, "*.parquet")))
    if not paths:
        return pa.table({"key": pa.array([], pa.string()), "clip_score": pa.array([], pa.float64())})
    return pa.concat_tables([pq.read_table(p) for p in paths])


def as_matrix(column: pa.ChunkedArray) -> np.ndarray:
    """A fixed_size_list<float16> column as a float32 ``[n, d]`` matrix."""
    array = column.combine_chunks()
    if len(array) == 0:
        return np.empty((0, 0), dtype=np.float32)
    flat = array.values.to_numpy(zero_copy_only=False)
    return flat.astype(np.float32).reshape(len(array), array.type.list_size)
