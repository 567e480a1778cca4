"""The CLIP scorer's model core: load an open_clip model and encode batches. No Beam here.

Input: a ``ScorerSpec`` (model, weights, device, precision) and encoded images with their
captions. Output: a ``LoadedScorer`` and, per batch, ``Encoded`` cosine scores with L2-normalised
float16 image and text embeddings. Nothing is dropped; a model or weights that cannot be had
raise ``ScorerUnavailable`` at load time, with a message saying how to supply them.

Decode + preprocessing of a batch run in a small thread pool (PIL releases the GIL). On CUDA the
batch goes through pinned memory with a non-blocking copy and the model runs under bf16/fp16
autocast (``score.precision``); on CPU in fp32. Scores are always computed in fp32 from the
normalised embeddings. Users: transforms/clip_handler.py (RunInference's ModelHandler),
transforms/safety_tags.py (prompt embeddings), pipeline/search.py, pipeline/sample/scorer.py.
torch and open_clip are imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, replace
from typing import Any, Sequence


class ScorerUnavailable(RuntimeError):
    """The scorer's model or weights cannot be loaded; raised at startup."""


@dataclass(frozen=True)
class ScorerSpec:
    """What the scorer needs (pipeline/specs.py makes it from the ``score`` section)."""

    model: str  # open_clip model name or a model JSON (local or gs://)
    pretrained: str  # open_clip tag or a checkpoint file ("" = random init)
    batch_size: int
    device: str  # auto | cpu | cuda
    precision: str  # auto | fp32 | fp16 | bf16
    embeddings: bool  # carry embeddings on ScoredImage (OUT/embeddings/)

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
