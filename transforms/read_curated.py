"""ReadCurated*: a finished ``wit curate`` output read back as pipeline records (for ``wit refilter``).

Input: an output directory (local or ``gs://``, through Beam ``FileSystems``).
Output PCollections: ``ScoredImage`` per kept sample, rebuilt from its shard (image
bytes and ``.json`` metadata, whose ``clip_score`` keeps every bit of the float)
and the sidecar parquet (URL-list ``extra`` columns); ``Rejection`` per row of
``rejections/``; ``(key, clip_score, image_embedding)`` per row of ``embeddings/``.
Nothing is dropped. A sample rebuilt here writes the same tar members and parquet
row as the original (tests/pipeline/test_refilter.py checks the bytes).
"""

from __future__ import annotations

import io
import json
import tarfile

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipeline import shard_format
from pipeline.records import AltPair, Rejection, ResizedImage, ScoredImage
from transforms.embeddings import EMBEDDING_DTYPE, EMBEDDINGS_DIR, as_matrix


def list_files(directory: str, pattern: str) -> list[str]:
    """Sorted paths matching ``directory/pattern`` ([] when the directory is missing)."""
    result = FileSystems.match([FileSystems.join(directory, pattern)])[0]
    return sorted(m.path for m in result.metadata_list)


def _read_bytes(path: str) -> bytes:
    with FileSystems.open(path) as fh:
        return fh.read()


def _tar_members(payload: bytes) -> dict:
    """{key: {ext: bytes}} of a webdataset tar."""
    members: dict = {}
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r:") as tar:
        for info in tar.getmembers():
            key, _, ext = info.name.partition(".")
            members.setdefault(key, {})[ext] = tar.extractfile(info).read()
    return members


def sample_from(meta: dict, image_ext: str, image: bytes, extra: tuple) -> ScoredImage:
    """The ScoredImage whose ``sample_row`` is ``meta`` (the shard's json)."""
    pair = AltPair(key=meta["key"], page_url=meta["page_url"], image_url=meta["url"], caption=meta["caption"],
                   page_title=meta.get("page_title") or "", title=meta.get("title") or "",
                   figcaption=meta.get("figcaption") or "", heading=meta.get("heading") or "",
                   lang=meta.get("lang") or "", extra=extra, license=meta.get("license") or "",
                   uid=meta.get("uid") or "")
    resized = ResizedImage(pair=pair, data=image, ext=image_ext, width=meta["width"], height=meta["height"],
                           original_width=meta["original_width"], original_height=meta["original_height"],
                           sha256=meta["sha256"], final_url=meta.get("final_url") or "",
                           mime=meta.get("mime") or "", phash=meta.get("phash") or "",
                           exif=meta.get("exif") or "")
    safety = tuple((k[len(shard_format.SAFETY_PREFIX):], v) for k, v in sorted(meta.items())
                   if k.startswith(shard_format.SAFETY_PREFIX) and isinstance(v, (int, float)))
    return ScoredImage(image=resized, clip_score=meta.get("clip_score"), clip_model=meta.get("clip_model") or "",
                       safety=safety)


def read_shard(tar_path: str):
    """Every sample of one shard (tar + its sidecar parquet), in key order."""
    members = _tar_members(_read_bytes(tar_path))
    table = pq.read_table(io.BytesIO(_read_bytes(tar_path[: -len(".tar")] + ".parquet")), columns=["key", "extra"])
    extras = {k: tuple(sorted(json.loads(e).items())) if e else () for k, e in
              zip(table.column("key").to_pylist(), table.column("extra").to_pylist())}
    for key in sorted(members):
        parts = members[key]
        meta = json.loads(parts["json"].decode("utf-8"))
        image_ext = next(ext for ext in parts if ext not in ("json", "txt"))
        yield sample_from(meta, image_ext, parts[image_ext], extras.get(key, ()))


def read_rejection_file(path: str):
    for row in pq.read_table(io.BytesIO(_read_bytes(path))).to_pylist():
        values = {name: row.get(name) or "" for name in shard_format.REJECTION_TEXT_COLUMNS}
        yield Rejection(**values, thumbnail=row.get("thumbnail"))  # None stays None: no thumbnail kept


def read_embedding_file(path: str):
    table = pq.read_table(io.BytesIO(_read_bytes(path)), columns=["key", "clip_score", "image_embedding"])
    vectors = as_matrix(table.column("image_embedding")).astype(EMBEDDING_DTYPE)  # float16 -> 32 -> 16: exact
    for i, (key, score) in enumerate(zip(table.column("key").to_pylist(), table.column("clip_score").to_pylist())):
        yield key, score, vectors[i].tobytes()


class ReadCuratedSamples(beam.PTransform):
    """OUT -> ScoredImage per kept sample."""

    def __init__(self, output_dir: str):
        super().__init__()
        self.paths = list_files(FileSystems.join(output_dir, shard_format.SHARDS_DIR), "*.tar")

    def expand(self, pbegin):
        return pbegin | "ShardPaths" >> beam.Create(self.paths) | "ReadShard" >> beam.FlatMap(read_shard)


class ReadCuratedRejections(beam.PTransform):
    """OUT -> Rejection per row of rejections/."""

    def __init__(self, output_dir: str):
        super().__init__()
        self.paths = list_files(FileSystems.join(output_dir, shard_format.REJECTIONS_DIR), "*.parquet")

    def expand(self, pbegin):
        return pbegin | "RejectionPaths" >> beam.Create(self.paths) | "ReadRejections" >> beam.FlatMap(
            read_rejection_file)


class ReadCuratedEmbeddings(beam.PTransform):
    """OUT -> (key, clip_score, image embedding bytes) per row of embeddings/."""

    def __init__(self, output_dir: str):
        super().__init__()
        self.paths = list_files(FileSystems.join(output_dir, EMBEDDINGS_DIR), "*.parquet")

    def expand(self, pbegin):
        return pbegin | "EmbeddingPaths" >> beam.Create(self.paths) | "ReadEmbeddings" >> beam.FlatMap(
            read_embedding_file)
