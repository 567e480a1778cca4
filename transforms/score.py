"""ScoreClip: CLIP image-text cosine similarity per pair, through Beam's RunInference.

Input: ``ResizedImage``. Output: ``ScoredImage`` (``clip_score``, ``clip_model`` and
the L2-normalised image and text embeddings as float16 bytes, for OUT/embeddings/).
Nothing is dropped here: ClipThreshold decides. The image scored is the resized
one already in memory (no second download); the model's own eval preprocessing
is applied to it, so scores match what open_clip would compute on that image.

``OpenClipHandler`` (transforms/clip_handler.py) is a custom ``ModelHandler``: the open_clip model and
tokenizer are built in ``load_model()`` (on the worker, never pickled; shared by
the worker's threads through RunInference's shared model), batches are sized by
``score.batch_size``. Decode + preprocessing of a batch run in a small thread
pool (PIL releases the GIL). On CUDA the batch goes through pinned memory with a
non-blocking copy and the model runs under bf16/fp16 autocast (``score.precision``);
on CPU in fp32. Scores are always computed in fp32 from the normalised embeddings.

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

import io
import logging
import os
import zlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Optional, Sequence

import apache_beam as beam

if TYPE_CHECKING:  # apache_beam.ml.inference imports torch (~2-4 s): only runs that score pay for it
    from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from pipeline import metrics
from pipeline.records import ResizedImage, ScoredImage

log = logging.getLogger(__name__)


class ScorerUnavailable(RuntimeError):
    """The scorer's model or weights cannot be loaded; raised at startup."""


@dataclass(frozen=True)
class ScorerSpec:
    model: str
    pretrained: str
    batch_size: int = 64
    device: str = "auto"
    precision: str = "auto"  # auto | fp32 | fp16 | bf16
    embeddings: bool = True  # carry embeddings on ScoredImage (OUT/embeddings/)

    @property
    def model_id(self) -> str:
        name = os.path.basename(self.model).removesuffix(".json")
        weights = os.path.basename(self.pretrained) if os.path.sep in self.pretrained else self.pretrained
        return f"{name}/{weights}" if weights else name


@dataclass
class LoadedScorer:
    model: Any
    preprocess: Any
    tokenizer: Any
    device: str
    amp_dtype: Any = None  # torch dtype for CUDA autocast, None = fp32


@dataclass(frozen=True)
class Encoded:
    """One batch through the model: scores and L2-normalised float16 embeddings."""

    scores: list
    image_embeddings: Any  # numpy float16 [n, d]
    text_embeddings: Any


def _pick_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def _amp_dtype(device: str, precision: str):
    """Autocast dtype: only on CUDA (CPU autocast is slower than fp32 for these models)."""
    import torch

    if not device.startswith("cuda") or precision == "fp32":
        return None
    if precision == "bf16" or (precision == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


_LOCAL_COPIES: dict = {}


def local_copy(path: str) -> str:
    """``path`` itself when local; a file on local disk for a ``gs://`` (any Beam filesystem)
    path, copied once per process through ``FileSystems`` (open_clip reads local files only)."""
    if "://" not in path:
        return path
    if path not in _LOCAL_COPIES:
        import tempfile

        from apache_beam.io.filesystems import FileSystems

        target = os.path.join(tempfile.mkdtemp(prefix="wit-model-"), path.rstrip("/").rsplit("/", 1)[-1])
        try:
            with FileSystems.open(path) as src, open(target, "wb") as dst:
                while chunk := src.read(1 << 24):
                    dst.write(chunk)
        except (OSError, ValueError) as exc:  # missing object, no filesystem for the scheme
            raise ScorerUnavailable(f"cannot copy scorer file {path!r} to local disk: {exc}") from exc
        _LOCAL_COPIES[path] = target
    return _LOCAL_COPIES[path]


def load_scorer(spec: ScorerSpec) -> LoadedScorer:
    """Build the open_clip model; ScorerUnavailable says how to supply missing weights.

    Model JSON and weights may be ``gs://`` paths: they are copied to local disk first
    (on a worker: in ``load_model()``, i.e. at setup, never in the pickled handler)."""
    from trainer.model import create_model  # the one open_clip factory of the project

    spec = replace(spec, model=local_copy(spec.model), pretrained=local_copy(spec.pretrained))
    device = _pick_device(spec.device)
    looks_like_file = spec.pretrained.endswith((".pt", ".pth", ".bin", ".safetensors")) or os.sep in spec.pretrained
    if looks_like_file and not os.path.exists(spec.pretrained):
        raise ScorerUnavailable(
            f"score.pretrained={spec.pretrained!r}: no such file. Give a local open_clip checkpoint "
            "path, or an open_clip pretrained tag on a machine that can reach the model hub.")
    try:
        model, _train_tf, preprocess, tokenizer = create_model(spec.model, spec.pretrained, device=device)
    except (RuntimeError, OSError, ValueError, KeyError) as exc:
        raise ScorerUnavailable(
            f"cannot load scorer {spec.model!r} with weights {spec.pretrained!r}: {exc}. "
            "On a machine without internet, download the weights elsewhere "
            "(open_clip.create_model_and_transforms(model, pretrained=tag) caches them) and pass "
            "--set score.pretrained=/path/to/open_clip_model.safetensors; or --set score.enabled=false."
        ) from exc
    model.eval()
    return LoadedScorer(model, preprocess, tokenizer, device, _amp_dtype(device, spec.precision))


def _decode_and_preprocess(scorer: LoadedScorer, data: bytes):
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return scorer.preprocess(im.convert("RGB"))


_POOL = None


def _pool():
    """A few threads for decode + preprocessing (PIL and torch release the GIL)."""
    global _POOL
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="wit-preprocess")
    return _POOL


def preprocess_batch(scorer: LoadedScorer, encoded_images: Sequence[bytes]):
    """A [n, 3, H, W] float tensor: the model's own eval preprocessing of each encoded image."""
    import torch

    if len(encoded_images) < 8:
        tensors = [_decode_and_preprocess(scorer, d) for d in encoded_images]
    else:
        tensors = list(_pool().map(lambda d: _decode_and_preprocess(scorer, d), encoded_images))
    return torch.stack(tensors)


def encode_pixels(scorer: LoadedScorer, pixels, captions: Sequence[str]) -> Encoded:
    """Scores and embeddings of a preprocessed batch and its captions."""
    import torch

    tokens = scorer.tokenizer(list(captions))
    if scorer.device.startswith("cuda"):
        pixels = pixels.pin_memory().to(scorer.device, non_blocking=True)
        tokens = tokens.to(scorer.device, non_blocking=True)
    amp = torch.autocast("cuda", dtype=scorer.amp_dtype) if scorer.amp_dtype is not None else _NoAmp()
    with torch.inference_mode(), amp:
        img = scorer.model.encode_image(pixels)
        txt = scorer.model.encode_text(tokens)
    img = torch.nn.functional.normalize(img.float(), dim=-1)
    txt = torch.nn.functional.normalize(txt.float(), dim=-1)
    scores = (img * txt).sum(dim=-1).cpu().tolist()
    return Encoded(scores, img.cpu().half().numpy(), txt.cpu().half().numpy())


class _NoAmp:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def cosine_scores(scorer: LoadedScorer, images: Sequence, captions: Sequence[str]) -> list[float]:
    """Cosine similarity of each (PIL image, caption) pair."""
    import torch

    pixels = torch.stack([scorer.preprocess(im) for im in images])
    return encode_pixels(scorer, pixels, captions).scores


def _chunks(bucket_and_images, batch_size: int):
    _bucket, images = bucket_and_images
    ordered = sorted(images, key=lambda im: im.pair.key)
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
            | "AssignBucket" >> beam.Map(
                lambda im, n: (zlib.crc32(im.pair.key.encode()) % max(1, -(-n // per_bucket)), im),
                n=beam.pvalue.AsSingleton(count))
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


def scorer_spec(cfg) -> ScorerSpec:
    """ScorerSpec from the ``score`` config section."""
    return ScorerSpec(cfg.model, cfg.pretrained, cfg.batch_size, cfg.device, cfg.precision, cfg.embeddings)
