"""OpenClipHandler: the Beam RunInference ``ModelHandler`` around an open_clip scorer.

Input: batches of ``ResizedImage`` (pre-batched by transforms/score.py). Output: one
``PredictionResult`` per image whose inference is (cosine score, image embedding
bytes, text embedding bytes); nothing is dropped. The model itself is transforms/clip_model.py;
this module is kept apart from transforms/score.py (the stage) because apache_beam.ml.inference
imports torch: runs with scoring off never load it.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from pipeline.records import ResizedImage
from transforms.image_store import image_bytes, image_length
from transforms.clip_model import LoadedScorer, ScorerSpec, encode_pixels, load_scorer, preprocess_batch


class OpenClipHandler(ModelHandler[ResizedImage, float, LoadedScorer]):
    """RunInference handler: a batch of ResizedImage -> cosine score per image."""

    def __init__(self, spec: ScorerSpec):
        super().__init__(min_batch_size=1, max_batch_size=spec.batch_size)
        self.spec = spec

    def load_model(self) -> LoadedScorer:
        return load_scorer(self.spec)

    def run_inference(self, batch: Sequence[ResizedImage], model: LoadedScorer,
                      inference_args: Optional[dict] = None) -> Iterable[PredictionResult]:
        """One PredictionResult per image: inference = (score, image emb bytes, text emb bytes)."""
        pixels = preprocess_batch(model, [image_bytes(item) for item in batch])
        out = encode_pixels(model, pixels, [item.pair.caption for item in batch])
        keep = self.spec.embeddings
        return [PredictionResult(item, (score, out.image_embeddings[i].tobytes() if keep else b"",
                                        out.text_embeddings[i].tobytes() if keep else b""), self.spec.model_id)
                for i, (item, score) in enumerate(zip(batch, out.scores))]

    def get_num_bytes(self, batch: Sequence[ResizedImage]) -> int:
        return sum(image_length(item) for item in batch)

    def get_metrics_namespace(self) -> str:
        return "wit_score"
