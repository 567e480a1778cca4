"""Deterministic, resumable sample streams for training (the webdataset stages under the loader).

Input: tar urls with a mixing weight each, a seed, this process's rank and DataLoader worker,
and optionally a ``cursor`` ({stream: samples already consumed}) from a checkpoint.
Output: webdataset pipeline stages: ``WeightedShards`` (shards drawn with replacement, with
per-shard probabilities), ``SeededShuffle`` (sample buffer), ``Cursor`` (numbers the samples of a
stream and skips those already consumed) and ``collate_seeded`` (image augmentations seeded per
batch). Nothing is dropped here.

How a resumed run sees the same batches as an uninterrupted one (``--resume``):

* every sample stream (one per rank and logical DataLoader worker) is a pure function of
  (seed, stream id): shard draws and the shuffle buffer use ``random.Random`` seeded from them;
* the stream numbers its samples after the shuffle (``__pos__``); a batch carries the position
  after its last sample, the loop keeps the latest per stream and checkpoints that ``cursor``;
* on resume each stream replays its shard draws and shuffle and skips ``cursor[stream]`` samples
  before decoding (tar bytes are read, images are not decoded);
* the random image augmentations of a batch draw from torch's RNG seeded by (seed, stream, first
  position), in a forked RNG, so they do not depend on what came before;
* a DataLoader hands out batches round-robin over its workers, so worker ``w`` of a loader that
  starts after ``b`` batches plays logical worker ``(w + b) % workers``.
"""

from __future__ import annotations

import hashlib
import logging
import random
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

import torch
import webdataset as wds

logger = logging.getLogger(__name__)

POSITION_KEY = "__pos__"
STREAM_KEY = "__stream__"


def stream_id(rank: int = 0, offset: int = 0) -> int:
    """This process's stream: ``rank * workers + logical worker`` (call inside the stream)."""
    info = torch.utils.data.get_worker_info()
    worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
    return rank * workers + (worker + offset) % workers


def stream_seed(seed: int, stream: int, salt: int = 0) -> int:
    """A 63-bit seed, fixed for (seed, stream, salt) in every process (``hash()`` of a string is
    salted per process, so it is not used)."""
    digest = hashlib.blake2b(f"wit-train:{seed}:{stream}:{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def mixing_weights(sizes: Sequence[Sequence[int]], weights: Sequence[float] = ()) -> list[float]:
    """Per-shard draw probabilities so that dataset ``d`` supplies ``weights[d] / sum(weights)``
    of the samples. ``sizes[d]``: samples per shard of dataset ``d``; no weights = by size.

    A shard of ``d`` is drawn with probability proportional to ``w_d / N_d`` (``N_d`` = samples
    in ``d``): the expected samples per draw from ``d`` are then ``w_d / N_d * N_d = w_d``.
    """
    if weights and len(weights) != len(sizes):
        raise ValueError(f"{len(weights)} weights for {len(sizes)} datasets")
    probs: list[float] = []
    for d, shard_sizes in enumerate(sizes):
        total = sum(shard_sizes)
        weight = float(weights[d]) if weights else float(total)
        if total <= 0:
            logger.warning("dataset %d has no samples in sizes.json; it is never drawn", d)
            probs.extend(0.0 for _ in shard_sizes)
            continue
        probs.extend(weight / total for _ in shard_sizes)
    if not any(probs):
        raise ValueError("no shard can be drawn: every dataset is empty by sizes.json")
    return probs


class WeightedShards(wds.PipelineStage):
    """Endless ``{"url": ...}`` draws with replacement, weighted, seeded per stream."""

    def __init__(self, urls: Sequence[str], weights: Optional[Sequence[float]], seed: int,
                 rank: int = 0, offset: int = 0) -> None:
        self.urls = list(urls)
        self.weights = list(weights) if weights else None
        self.seed, self.rank, self.offset = seed, rank, offset

    def run(self) -> Iterator[dict[str, str]]:  # a source: webdataset calls it without input
        rng = random.Random(stream_seed(self.seed, stream_id(self.rank, self.offset), salt=1))
        while True:
            if self.weights is None:
                yield {"url": rng.choice(self.urls)}
            else:
                yield {"url": rng.choices(self.urls, weights=self.weights, k=1)[0]}


class SeededShuffle(wds.PipelineStage):
    """webdataset's sample shuffle buffer with an RNG seeded per stream (its public shuffle
    stages take one seed at construction, the same in every worker)."""

    def __init__(self, bufsize: int, seed: int, rank: int = 0, offset: int = 0) -> None:
        self.bufsize, self.initial = bufsize, min(bufsize, 100)
        self.seed, self.rank, self.offset = seed, rank, offset

    def run(self, src: Iterator[Any]) -> Iterator[Any]:
        rng = random.Random(stream_seed(self.seed, stream_id(self.rank, self.offset), salt=2))
        return wds.filters._shuffle(src, self.bufsize, self.initial, rng)  # pinned <= 0.2.86


class Cursor(wds.PipelineStage):
    """Numbers each sample of the stream (``__pos__``, ``__stream__``) and drops the first
    ``skip[stream]`` of them: the samples a resumed run's checkpoint says were consumed."""

    def __init__(self, skip: Optional[Mapping[int, int]] = None, rank: int = 0,
                 offset: int = 0) -> None:
        self.skip = dict(skip or {})
        self.rank, self.offset = rank, offset

    def run(self, src: Iterator[dict]) -> Iterator[dict]:
        stream = stream_id(self.rank, self.offset)
        skip = self.skip.get(stream, 0)
        for pos, sample in enumerate(src):
            if pos < skip:
                continue  # still raw bytes: skipping costs a tar read, no decode
            sample[POSITION_KEY], sample[STREAM_KEY] = pos, stream
            yield sample


def collate_seeded(samples: list[tuple], preprocess: Callable, seed: int
                   ) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """``[(pil image, tokens, meta), ...]`` -> ``(images, tokens, info)``.

    The augmentations draw from torch's RNG seeded by the batch's first (stream, position),
    inside a forked RNG, so the training process's own RNG is untouched. ``info``: ``meta``
    (one dict per sample), ``stream`` and ``next`` (the stream position after this batch).
    """
    metas = [meta for _, _, meta in samples]
    stream, first = metas[0][STREAM_KEY], metas[0][POSITION_KEY]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(stream_seed(seed, stream, salt=first + 3))
        images = torch.stack([preprocess(image) for image, _, _ in samples])
    tokens = torch.stack([t for _, t, _ in samples])
    info = {"meta": metas, "stream": stream, "next": metas[-1][POSITION_KEY] + 1}
    return images, tokens, info
