"""``wit search``: text→image and image→image search over a curated output's stored CLIP embeddings.

Input: a local ``wit curate`` output (``embeddings/*.parquet``, ``shards/*.parquet``,
``run_config.yaml``) and a query: text, or an image file. Output: the ``k`` kept
samples whose image embedding has the highest cosine with the query embedding,
best first (``SearchHit``). Only kept samples are searched: dropped ones have no
stored image, and their embeddings are there for re-filtering. Nothing is dropped;
an output without embeddings, or whose model cannot be loaded, is a ``SearchInputError``.

The query is embedded by the output's own scorer (``score.model`` / ``score.pretrained``
in run_config.yaml; ``model`` / ``pretrained`` override it when the weights moved);
image queries get the model's eval preprocessing, as ScoreClip did.

Index (pipeline/search_index.py): exact top-k with numpy up to ``exact_max`` rows;
beyond, an HNSW graph from faiss, built once and cached under ``OUT/search_index/``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import pyarrow as pa
import yaml

from pipeline import shard_format
from pipeline.search_index import DEFAULT_EXACT_MAX, EmbeddingIndex, SearchInputError

log = logging.getLogger(__name__)

__all__ = ["SearchHit", "SearchInputError", "Searcher", "load_searcher"]


@dataclass(frozen=True)
class SearchHit:
    rank: int
    similarity: float  # cosine of the query and image embeddings
    row: dict  # the sample's parquet row (key, caption, url, clip_score, shard, ...)


def _kept_rows(output_dir: str) -> dict:
    table = shard_format.read_samples_table(os.path.join(output_dir, shard_format.SHARDS_DIR))
    return {row["key"]: row for row in table.to_pylist()}


def _kept_embeddings(output_dir: str, kept: dict) -> tuple[list, np.ndarray, str]:
    """(keys, [n, d] float32 image embeddings, clip_model) of the kept samples, in key order."""
    from transforms.embeddings import as_matrix, read_embeddings

    table = read_embeddings(output_dir)
    if table.num_rows == 0 or "image_embedding" not in table.column_names:
        raise SearchInputError(f"{output_dir} has no embeddings/ (curated with score.embeddings: false, or "
                               "score.enabled: false); search needs the stored CLIP image embeddings")
    mask = pa.array([key in kept for key in table.column("key").to_pylist()])
    table = table.filter(mask).sort_by("key")
    models = set(table.column("clip_model").to_pylist())
    return table.column("key").to_pylist(), as_matrix(table.column("image_embedding")), ",".join(sorted(models))


def scorer_spec_of(output_dir: str, model: Optional[str] = None, pretrained: Optional[str] = None):
    """The ScorerSpec of the output's run_config.yaml (overridable), on CPU unless CUDA is there."""
    from dataclasses import replace

    from pipeline.config import CurateConfig
    from pipeline.specs import scorer_spec

    path = os.path.join(output_dir, shard_format.RUN_CONFIG_FILE)
    try:
        with open(path, encoding="utf-8") as fh:
            score = (yaml.safe_load(fh) or {}).get("score") or {}
    except (OSError, yaml.YAMLError) as exc:
        if not (model and pretrained):
            raise SearchInputError(f"cannot read {path} ({exc}); pass --model and --pretrained") from None
        score = {}
    model, pretrained = model or score.get("model"), pretrained or score.get("pretrained")
    if not model:
        raise SearchInputError(f"{path} names no score.model; pass --model and --pretrained")
    from pipeline.run import resolve_project_path  # configs/..., models/... from anywhere, as wit curate

    return replace(scorer_spec(CurateConfig()), model=resolve_project_path(str(model)),
                   pretrained=resolve_project_path(str(pretrained or "")), device="auto", precision="fp32")


class Searcher:
    """An output's kept samples, their index, and the scorer that embeds queries (loaded on first query)."""

    def __init__(self, output_dir: str, exact_max: int = DEFAULT_EXACT_MAX, model: Optional[str] = None,
                 pretrained: Optional[str] = None, cache: bool = True):
        self.output_dir = output_dir
        self.rows = _kept_rows(output_dir)
        keys, matrix, self.clip_model = _kept_embeddings(output_dir, self.rows)
        cache_dir = os.path.join(output_dir, "search_index") if cache else None
        self.index = EmbeddingIndex(keys, matrix, exact_max=exact_max, cache_dir=cache_dir)
        self.spec = scorer_spec_of(output_dir, model, pretrained)
        self._scorer = None

    @property
    def scorer(self):
        if self._scorer is None:
            from transforms.clip_model import ScorerUnavailable, load_scorer

            try:
                self._scorer = load_scorer(self.spec)
            except ScorerUnavailable as exc:
                raise SearchInputError(f"cannot load the output's scorer to embed the query: {exc}") from None
        return self._scorer

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        scorer = self.scorer
        with torch.inference_mode():
            emb = scorer.model.encode_text(scorer.tokenizer(list(texts)).to(scorer.device))
        return torch.nn.functional.normalize(emb.float(), dim=-1).cpu().numpy()

    def embed_image(self, path: str) -> np.ndarray:
        import torch

        from transforms.clip_model import preprocess_batch

        try:
            with open(path, "rb") as fh:
                pixels = preprocess_batch(self.scorer, [fh.read()])
        except OSError as exc:  # missing file, or bytes Pillow cannot decode (UnidentifiedImageError)
            raise SearchInputError(f"cannot read query image {path}: {exc}") from None
        with torch.inference_mode():
            emb = self.scorer.model.encode_image(pixels.to(self.scorer.device))
        return torch.nn.functional.normalize(emb.float(), dim=-1).cpu().numpy()

    def search_vectors(self, queries: np.ndarray, k: int) -> list[list[SearchHit]]:
        sims, idx = self.index.search(queries, k)
        return [[SearchHit(rank + 1, float(s), self.rows[self.index.keys[i]])
                 for rank, (s, i) in enumerate(zip(srow, irow)) if i >= 0]
                for srow, irow in zip(sims, idx)]

    def search_text(self, text: str, k: int = 20) -> list[SearchHit]:
        if not text.strip():
            raise SearchInputError("empty query text")
        return self.search_vectors(self.embed_texts([text]), k)[0]

    def search_image(self, path: str, k: int = 20) -> list[SearchHit]:
        return self.search_vectors(self.embed_image(path), k)[0]


def load_searcher(output_dir: str, **kwargs) -> Searcher:
    if not os.path.isdir(os.path.join(output_dir, shard_format.SHARDS_DIR)):
        raise SearchInputError(f"{output_dir} is not a wit curate output (no shards/)")
    return Searcher(output_dir, **kwargs)
