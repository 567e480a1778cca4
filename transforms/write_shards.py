"""WriteShards and WriteRejections: the files of the output contract.

Input: ``ScoredImage`` (WriteShards) or ``Rejection`` (WriteRejections).
Output files (through Beam ``FileSystems``, so local paths and ``gs://`` alike):
``shards/NNNNN.tar`` + ``shards/NNNNN.parquet`` + ``shards/sizes.json``, and
``rejections/NNNNN.parquet``. The returned PCollection holds ``(file name,
rows)`` per file written. Nothing is dropped here.

Shard assignment is deterministic and needs no global sort: the number of
shards is ``ceil(count / per_shard)`` (count known from a side input) and a
sample goes to ``int(key, 16) % n`` — keys are uniform hex digests, so shards
come out near the target size. Within a file rows are sorted by key. Each file
is written under a temporary name and renamed when complete (bundle retries).

Keys at 100M pairs: the counts are ``Count.Globally`` (combined per worker first). A
``GroupByFile`` key is one file: ``samples_per_shard`` (10,000) ScoredImages without their
embeddings, each packed into one bytes of ~1 KB with spilled image bytes
(transforms/output_files.py: the FnApiRunner holds a grouping's whole input decoded; ~10 MB
through the shuffle; the worker then reads the 10,000 images back, ~230 MB of 256-px JPEGs,
and builds the tar in memory), or ``rejections_per_file`` (200,000) Rejections of ~0.45 KB,
packed alike (~90 MB). ``CollectSizes`` is a ``ToList`` of one ``(tar name, n)`` per shard: a
few thousand entries (~2,000 shards for ~20M kept samples), kilobytes. The parquet ``exif``
column and the json's ``exif`` hold ``ResizedImage.exif`` (img2dataset's EXIF JSON text; the
json has no ``exif`` when there is none).
"""

from __future__ import annotations

import json
from dataclasses import replace

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipeline import metrics, shard_format
from pipeline.records import Rejection, ScoredImage
from transforms.image_store import image_bytes
from transforms.output_files import bucket_of, pack, unpack, write_atomically


def sample_row(scored: ScoredImage) -> dict:
    """The parquet row / tar json of one kept sample (img2dataset columns first)."""
    image, pair = scored.image, scored.image.pair
    return {
        "key": pair.key,
        "url": pair.image_url,
        "caption": pair.caption,
        "status": "success",
        "error_message": None,
        "width": image.width,
        "height": image.height,
        "original_width": image.original_width,
        "original_height": image.original_height,
        "exif": image.exif or None,  # EXIF as JSON object text (img2dataset's column); "" = none
        "sha256": image.sha256,
        "phash": image.phash or None,  # 64-bit windowed DCT pHash, hex (transforms/hashing.py)
        "clip_score": scored.clip_score,
        "clip_model": scored.clip_model or None,
        "page_url": pair.page_url,
        "final_url": image.final_url,
        "mime": image.mime,
        "page_title": pair.page_title,
        "title": pair.title,
        "figcaption": pair.figcaption,
        "heading": pair.heading,
        "lang": pair.lang,
        "license": pair.license or "unknown",  # transforms/license.py; "" = not captured
        "uid": pair.uid or None,  # a URL list's uid (DataComp); null = none
        # Extra columns of a URL list, as one JSON object (the parquet schema stays fixed).
        "extra": json.dumps(dict(pair.extra), sort_keys=True, ensure_ascii=False) if pair.extra else None,
        # safety_<tag> scores (transforms/safety_tags.py), when safety.enabled
        **{f"{shard_format.SAFETY_PREFIX}{tag}": score for tag, score in scored.safety},
    }


def rejection_row(rej: Rejection) -> dict:
    return {name: getattr(rej, name) for name in shard_format.REJECTION_SCHEMA.names}


def _key_of(record) -> str:
    return record.image.pair.key if isinstance(record, ScoredImage) else record.key


class _WriteShardFn(beam.DoFn):
    def __init__(self, shards_dir: str):
        self.shards_dir = shards_dir

    def process(self, bucket_and_records):
        bucket, packed = bucket_and_records
        name = shard_format.shard_name(bucket)
        rows, samples = [], []
        for scored in sorted(map(unpack, packed), key=_key_of):
            row = sample_row(scored)
            row["shard"] = name
            rows.append(row)
            meta = {k: v for k, v in row.items() if k not in ("status", "error_message", "exif", "extra")}
            if row["exif"]:  # as img2dataset: the EXIF JSON text in the json too (absent when none)
                meta["exif"] = row["exif"]
            # As img2dataset: a URL list's extra columns sit beside ours in the json.
            meta.update({k: v for k, v in scored.image.pair.extra if k not in meta})
            samples.append({"key": row["key"], "ext": scored.image.ext, "image": image_bytes(scored.image),
                            "caption": row["caption"], "meta": meta})
        base = FileSystems.join(self.shards_dir, name)
        write_atomically(base + ".tar", shard_format.tar_bytes(samples))
        write_atomically(base + ".parquet", shard_format.parquet_bytes(rows, shard_format.sample_schema(rows)))
        metrics.inc(metrics.Counter.SHARDS_WRITTEN)
        metrics.inc(metrics.Counter.SAMPLES_WRITTEN, len(rows))
        yield f"{name}.tar", len(rows)


class _WriteRejectionFileFn(beam.DoFn):
    def __init__(self, rejections_dir: str):
        self.rejections_dir = rejections_dir

    def process(self, bucket_and_records):
        bucket, packed = bucket_and_records
        rows = [rejection_row(r) for r in sorted(map(unpack, packed), key=lambda r: (r.key, r.reason))]
        name = f"{shard_format.shard_name(bucket)}.parquet"
        payload = shard_format.parquet_bytes(rows, shard_format.REJECTION_SCHEMA)
        write_atomically(FileSystems.join(self.rejections_dir, name), payload)
        metrics.inc(metrics.Counter.REJECTIONS_WRITTEN, len(rows))
        yield name, len(rows)


def _write_sizes(sizes: list, shards_dir: str) -> None:
    write_atomically(FileSystems.join(shards_dir, shard_format.SIZES_FILE),
                     shard_format.sizes_json(dict(sizes)))


def _light_sample(scored: ScoredImage) -> ScoredImage:
    """What the shard writer reads of a sample: everything but the embeddings (embeddings/ has them)."""
    if scored.image_embedding or scored.text_embedding:
        return replace(scored, image_embedding=b"", text_embedding=b"")
    return scored


def _identity(record):
    return record


def _keyed_packed(record, light):
    return _key_of(record), pack(light(record))


def _assign_file(key_and_packed, n: int, per: int):
    key, packed = key_and_packed
    return bucket_of(key, n, per), packed


class _BucketAndWrite(beam.PTransform):
    """Records -> (file bucket, [packed records]) -> ``writer``.

    The records are packed (transforms/output_files.py) before the count's side input
    stops fusion, so what waits for the count and what GroupByFile holds is one bytes
    object per record, not the decoded record (bench/memory.py)."""

    def __init__(self, per_file: int, writer: beam.DoFn, light=_identity):
        super().__init__()
        self.per_file, self.writer, self.light = per_file, writer, light

    def expand(self, records):
        count = records | "Count" >> beam.combiners.Count.Globally()
        return (
            records
            | "Pack" >> beam.Map(_keyed_packed, self.light)
            | "AssignFile" >> beam.Map(_assign_file, n=beam.pvalue.AsSingleton(count), per=self.per_file)
            | "GroupByFile" >> beam.GroupByKey()
            | "WriteFile" >> beam.ParDo(self.writer)
        )


class WriteShards(beam.PTransform):
    """ScoredImage -> shards/NNNNN.tar|.parquet and shards/sizes.json; emits (tar name, n)."""

    def __init__(self, output_dir: str, samples_per_shard: int):
        super().__init__()
        self.shards_dir = FileSystems.join(output_dir, shard_format.SHARDS_DIR)
        self.samples_per_shard = samples_per_shard

    def expand(self, scored):
        written = scored | "Shards" >> _BucketAndWrite(self.samples_per_shard, _WriteShardFn(self.shards_dir),
                                                       _light_sample)
        _ = (
            written
            | "CollectSizes" >> beam.combiners.ToList()
            | "WriteSizes" >> beam.Map(_write_sizes, self.shards_dir)
        )
        return written


class WriteRejections(beam.PTransform):
    """Rejection -> rejections/NNNNN.parquet; emits (file name, n)."""

    def __init__(self, output_dir: str, rows_per_file: int):
        super().__init__()
        self.rejections_dir = FileSystems.join(output_dir, shard_format.REJECTIONS_DIR)
        self.rows_per_file = rows_per_file

    def expand(self, rejections):
        return rejections | "Files" >> _BucketAndWrite(self.rows_per_file,
                                                       _WriteRejectionFileFn(self.rejections_dir))
