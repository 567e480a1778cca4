"""WriteEmbeddings: CLIP image and text embeddings of every scored sample, for re-filtering later.

Input: ``ScoredImage`` (everything ScoreClip scored: kept, below the threshold or
deduplicated after scoring), and optionally the kept samples (``{"scored": ..., "kept":
...}``). Output files ``OUT/embeddings/NNNNN.parquet``, one row per sample: ``key``,
``clip_model``, ``clip_score`` (float32, as the shards: ScoreClip's scores are float32
values, so this is exactly the score the threshold saw), ``kept`` (bool: the sample is in
the shards; null when the writer was not given the kept samples), ``image_embedding`` and
``text_embedding`` (``fixed_size_list<float16>``, L2-normalised). Rows sorted by key
within a file, files are hash buckets of the key (as the shards), written under a
temporary name and renamed. Nothing is dropped; unscored records (``score.enabled:
false``) write nothing. Files written before ``kept`` existed (``clip_score`` float64, no
``kept``) are read alike.

Readers: ``read_embeddings`` (pyarrow table) and ``as_matrix`` (numpy float32).
``wit refilter`` re-thresholds from ``clip_score`` and semantic dedupe reads the
image embeddings; neither needs the model again.

Keys at 100M pairs: the row count is a ``Count.Globally`` (combined on each worker before the
shuffle); ``GroupByEmbeddingFile`` keys by file bucket, so its largest key is one file's rows:
``rows_per_file`` (build.py passes ``output.samples_per_shard``, 10,000) packed light rows (key,
model, score and ViT-B-32's two 512-d float16 embeddings, ~2.2 KB; not the ScoredImage) plus
the kept keys of that file (~50 bytes each): ~23 MB, whatever the run's size.
"""

from __future__ import annotations

import glob
import io
import os
from typing import Optional, Sequence

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipeline import shard_format
from pipeline.records import ScoredImage
from transforms.output_files import bucket_of, pack, unpack, write_atomically

EMBEDDINGS_DIR = "embeddings"
EMBEDDING_DTYPE = "<f2"  # little-endian float16: the bytes ScoredImage carries


def decode(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=EMBEDDING_DTYPE)


def _vectors(blobs: Sequence[bytes], dim: int) -> pa.Array:
    flat = np.frombuffer(b"".join(blobs), dtype=EMBEDDING_DTYPE) if blobs else np.empty(0, EMBEDDING_DTYPE)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat.astype(np.float16), type=pa.float16()), dim)


def light_row(record: ScoredImage) -> tuple:
    """(key, clip_model, clip_score, image embedding, text embedding): what a file row needs."""
    return (record.image.pair.key, record.clip_model, record.clip_score, record.image_embedding,
            record.text_embedding)


def embeddings_table(records: Sequence, kept: Optional[set] = None) -> pa.Table:
    """One row per record (a ScoredImage or its ``light_row``), sorted by key; ``kept``: the kept keys
    (None: the ``kept`` column is null)."""
    rows = sorted((light_row(r) if isinstance(r, ScoredImage) else tuple(r) for r in records), key=lambda r: r[0])
    dims = {len(r[3]) // 2 for r in rows} | {len(r[4]) // 2 for r in rows}
    if len(dims) != 1:
        raise ValueError(f"embeddings of one output must share one dimension, got {sorted(dims)}")
    dim = dims.pop()
    return pa.table({
        "key": pa.array([r[0] for r in rows], type=pa.string()),
        "clip_model": pa.array([r[1] for r in rows], type=pa.string()),
        "clip_score": pa.array([r[2] for r in rows], type=pa.float32()),
        "kept": pa.array([None if kept is None else r[0] in kept for r in rows], type=pa.bool_()),
        "image_embedding": _vectors([r[3] for r in rows], dim),
        "text_embedding": _vectors([r[4] for r in rows], dim),
    })


def table_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


class _WriteEmbeddingFileFn(beam.DoFn):
    def __init__(self, directory: str, with_kept: bool):
        self.directory, self.with_kept = directory, with_kept

    def process(self, bucket_and_joined):
        bucket, joined = bucket_and_joined
        rows = [unpack(packed) for packed in joined["row"]]
        if not rows:  # kept keys only: not possible (kept samples are scored ones), nothing to write
            return
        kept = set(joined.get("kept", ())) if self.with_kept else None
        name = f"{shard_format.shard_name(bucket)}.parquet"
        write_atomically(FileSystems.join(self.directory, name), table_bytes(embeddings_table(rows, kept)))
        yield name


def _has_embeddings(record: ScoredImage) -> bool:
    return bool(record.image_embedding) and bool(record.text_embedding)


def _packed_row(record: ScoredImage):
    return record.image.pair.key, pack(light_row(record))


def _kept_key(record) -> tuple:
    key = record.image.pair.key if isinstance(record, ScoredImage) else record.pair.key
    return key, key


def _in_file(key_and_value, n: int, per: int):
    key, value = key_and_value
    return bucket_of(key, n, per), value


class WriteEmbeddings(beam.PTransform):
    """ScoredImage, or {"scored": ScoredImage, "kept": kept samples} -> OUT/embeddings/NNNNN.parquet;
    emits the file names.

    The rows are packed light tuples before the count's side input stops fusion; the kept
    samples reach their file as keys, in the same grouping (a CoGroupByKey on the file)."""

    def __init__(self, output_dir: str, rows_per_file: int):
        super().__init__()
        self.directory = FileSystems.join(output_dir, EMBEDDINGS_DIR)
        self.rows_per_file = rows_per_file

    def expand(self, inputs):
        scored, kept = (inputs["scored"], inputs.get("kept")) if isinstance(inputs, dict) else (inputs, None)
        with_vectors = scored | "WithEmbeddings" >> beam.Filter(_has_embeddings)
        count = beam.pvalue.AsSingleton(with_vectors | "CountEmbeddings" >> beam.combiners.Count.Globally())
        joined = {"row": (with_vectors | "PackRows" >> beam.Map(_packed_row)
                          | "AssignEmbeddingFile" >> beam.Map(_in_file, n=count, per=self.rows_per_file))}
        if kept is not None:
            joined["kept"] = (kept | "KeptKeys" >> beam.Map(_kept_key)
                              | "AssignKeptFile" >> beam.Map(_in_file, n=count, per=self.rows_per_file))
        return (joined | "GroupByEmbeddingFile" >> beam.CoGroupByKey()
                | "WriteEmbeddingFile" >> beam.ParDo(_WriteEmbeddingFileFn(self.directory, kept is not None)))


def read_embeddings(output_dir: str) -> pa.Table:
    """Every embeddings row of a local output directory (empty table when there are none)."""
    paths = sorted(glob.glob(os.path.join(output_dir, EMBEDDINGS_DIR, "*.parquet")))
    if not paths:
        return pa.table({"key": pa.array([], pa.string()), "clip_score": pa.array([], pa.float32())})
    # "permissive": files written before ``kept`` (float64 scores, no kept column) read beside new ones
    return pa.concat_tables([pq.read_table(p) for p in paths], promote_options="permissive")


def as_matrix(column: pa.ChunkedArray) -> np.ndarray:
    """A fixed_size_list<float16> column as a float32 ``[n, d]`` matrix."""
    array = column.combine_chunks()
    if len(array) == 0:
        return np.empty((0, 0), dtype=np.float32)
    flat = array.values.to_numpy(zero_copy_only=False)
    return flat.astype(np.float32).reshape(len(array), array.type.list_size)
