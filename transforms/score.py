"""ScoreClip: CLIP image-text cosine similarity per pair, through Beam's RunInference.

Input: ``ResizedImage``. Output: ``ScoredImage`` (``clip_score``, ``clip_model`` and
the L2-normalised image and text embeddings as float16 bytes, for OUT/embeddings/).
Nothing is dropped here: ClipThreshold decides. The image scored is the resized
one already in memory (no second download); the model's own eval preprocessing
is applied to it, so scores match what open_clip would compute on that image.

``OpenClipHandler`` (transforms/clip_handler.py) is a custom ``ModelHandler``: the open_clip model and
tokenizer are built in ``load_model()`` (on the worker, never pickled; shared by
the worker's threads through RunInference's shared model), batches are sized by
``score.batch_size``. The model core (loading, preprocessing, encoding: no Beam) is
transforms/clip_model.py; this module is the Beam stage only.

Batches are formed deterministically (hash bucket of the key, sorted, cut into
``batch_size`` chunks) and handed to RunInference pre-batched: a float's last
bit depends on which other rows share its matrix multiply, and Beam's own
batching follows bundle boundaries, so without this a rerun would write
different scores (and different shard bytes).

Keys at 100M pairs: ``CountForBatching`` is a ``Count.Globally`` (combined per worker first);
``GroupBucket``'s largest key is one bucket, ``batch_size * 16`` images on average (4,096 at
configs/dataflow.yaml's 256) of ~0.8 KB each with their bytes spilled (bench/record_sizes.py):
~3 MB, independent of the run's size; the buckets hash the key, so no bucket is hot.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Optional

import apache_beam as beam

if TYPE_CHECKING:  # apache_beam.ml.inference imports torch (~2-4 s): only runs that score pay for it
    from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from pipeline import metrics
from pipeline.records import ScoredImage
from transforms.clip_model import ScorerSpec
from transforms.output_files import pack, unpack


def _bucketed(image, n: int, per_bucket: int):
    """(bucket, packed image): packed, because a local runner holds a GroupByKey's whole input decoded
    (the FnApiRunner's GroupingBuffer), and one bytes object per record is about half the decoded
    record's size (1.1 vs 2.0 KB for a ScoredImage, bench/memory.py)."""
    return zlib.crc32(image.pair.key.encode()) % max(1, -(-n // per_bucket)), pack(image)


def _chunks(bucket_and_images, batch_size: int):
    _bucket, packed = bucket_and_images
    ordered = sorted((unpack(p) for p in packed), key=lambda im: im.pair.key)
    for start in range(0, len(ordered), batch_size):
        yield ordered[start:start + batch_size]


class BatchDeterministically(beam.PTransform):
    """ResizedImage -> lists of at most ``batch_size`` images, the same lists on every run."""

    # Buckets hold this many batches on average, so most chunks are full.
    BATCHES_PER_BUCKET = 16

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = batch_size

    def expand(self, images):
        per_bucket = self.batch_size * self.BATCHES_PER_BUCKET
        count = images | "CountForBatching" >> beam.combiners.Count.Globally()
        return (
            images
            | "AssignBucket" >> beam.Map(_bucketed, n=beam.pvalue.AsSingleton(count), per_bucket=per_bucket)
            | "GroupBucket" >> beam.GroupByKey()
            | "CutBatches" >> beam.FlatMap(_chunks, self.batch_size)
        )


def _to_scored(result: PredictionResult) -> ScoredImage:
    """A handler may return a bare score or (score, image embedding bytes, text embedding bytes)."""
    metrics.inc(metrics.Counter.IMAGES_SCORED)
    inference = result.inference
    if isinstance(inference, tuple):
        score, image_emb, text_emb = inference
    else:
        score, image_emb, text_emb = inference, b"", b""
    return ScoredImage(image=result.example, clip_score=float(score), clip_model=result.model_id,
                       image_embedding=image_emb, text_embedding=text_emb)


class ScoreClip(beam.PTransform):
    """ResizedImage -> ScoredImage (nothing dropped; see ClipThreshold)."""

    def __init__(self, spec: ScorerSpec, handler: Optional[ModelHandler] = None):
        super().__init__()
        self.spec = spec
        if handler is None:
            from transforms.clip_handler import OpenClipHandler

            handler = OpenClipHandler(spec)
        self.handler = handler

    def expand(self, images):
        from apache_beam.ml.inference.base import RunInference

        return (
            images
            | "Batch" >> BatchDeterministically(self.spec.batch_size)
            | "RunInference" >> RunInference(self.handler.with_no_batching())
            | "ToScored" >> beam.Map(_to_scored)
        )


class SkipScoring(beam.PTransform):
    """ResizedImage -> ScoredImage without a score (``score.enabled: false``)."""

    def expand(self, images):
        return images | "Unscored" >> beam.Map(lambda image: ScoredImage(image=image))
