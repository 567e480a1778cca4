"""webdataset loader over our shards (DESIGN.md §6).

Input: shard directories holding ``NNNNN.tar`` (members ``{key}.jpg|png|webp``, ``{key}.txt``,
``{key}.json``) and ``sizes.json``; an image transform and an open_clip tokenizer.
Output: a ``wds.WebLoader`` yielding ``(images [B,3,H,W] float, tokens [B,context] long)``,
with ``num_samples`` (from sizes.json), ``num_batches`` and ``skipped`` (a ``SkipCounter``)
attached as attributes, as open_clip_train does.
Dropped: samples whose image does not decode, or that lack an image or caption member
(warned and counted in the loading process; with workers > 0 each worker counts its own).

Built as an explicit ``wds.DataPipeline`` rather than ``wds.WebDataset`` because the latter
cannot seed its shard resampler or sample shuffle, and runs must be repeatable for a seed.
"""

from __future__ import annotations

import functools
import logging
import os
import random
from typing import Any, Callable, Iterator, Sequence

import webdataset as wds

from pipeline.shard_format import list_tars, read_sizes

logger = logging.getLogger(__name__)

IMAGE_KEYS = "jpg;png;webp"
TEXT_KEY = "txt"


class SkipCounter:
    """A webdataset handler: log the exception, count it, continue with the next sample."""

    def __init__(self, max_logged: int = 20) -> None:
        self.count = 0
        self.max_logged = max_logged

    def __call__(self, exn: Exception) -> bool:
        self.count += 1
        if self.count <= self.max_logged:
            logger.warning("skipping sample: %s: %s", type(exn).__name__, exn)
        return True


def shard_urls(shard_dirs: Sequence[str]) -> list[str]:
    """All tar paths of ``shard_dirs``, in directory then shard order."""
    if isinstance(shard_dirs, str):
        shard_dirs = [shard_dirs]
    urls: list[str] = []
    for shard_dir in shard_dirs:
        tars = list_tars(shard_dir)
        if not tars:
            raise FileNotFoundError(f"no .tar shards in {shard_dir}")
        urls.extend(tars)
    return urls


def count_samples(shard_dirs: Sequence[str]) -> int:
    """Samples in ``shard_dirs`` according to their sizes.json (tars missing from it count 0)."""
    if isinstance(shard_dirs, str):
        shard_dirs = [shard_dirs]
    total = 0
    for shard_dir in shard_dirs:
        sizes = read_sizes(shard_dir)
        for tar in list_tars(shard_dir):
            name = os.path.basename(tar)
            if name not in sizes:
                logger.warning("%s is not in %s/sizes.json; its samples are not counted",
                               name, shard_dir)
            total += sizes.get(name, 0)
    return total


def _worker_seed(seed: int) -> int:
    """Distinct per DataLoader worker (and rank), fixed for a given ``seed``."""
    return seed * 10_007 + wds.utils.pytorch_worker_seed()


class _SeededShuffle(wds.PipelineStage):
    """Sample shuffle buffer whose RNG is seeded per worker and per pass over the data."""

    def __init__(self, bufsize: int, seed: int) -> None:
        self.bufsize = bufsize
        self.initial = min(bufsize, 100)
        self.seed = seed
        self.epoch = -1

    def run(self, src: Iterator[Any]) -> Iterator[Any]:
        self.epoch += 1
        rng = random.Random(_worker_seed(self.seed) * 1_000_003 + self.epoch)
        # webdataset's own buffer (pinned <= 0.2.86, DESIGN.md §11); its public shuffle
        # stages take their RNG or seed at construction, the same in every worker.
        return wds.filters._shuffle(src, self.bufsize, self.initial, rng)


def _first(tokens: Any) -> Any:
    return tokens[0]


def make_pipeline(urls: Sequence[str], preprocess: Callable, tokenizer: Callable,
                  batch_size: int, seed: int = 0, resampled: bool = True,
                  shuffle_buffer: int = 1000, handler: Callable = wds.warn_and_continue
                  ) -> wds.DataPipeline:
    """The sample pipeline: shards -> samples -> (image tensor, tokens) -> batches.

    ``resampled``: draw shards with replacement forever (training); otherwise one pass over
    every shard, each worker taking its share, and the last partial batch kept (evaluation).
    """
    if resampled:
        stages: list[Any] = [wds.ResampledShards(
            list(urls), worker_seed=functools.partial(_worker_seed, seed), deterministic=True)]
    else:
        stages = [wds.SimpleShardList(list(urls)), wds.split_by_worker]
    stages.append(wds.tarfile_to_samples(handler=handler))
    if shuffle_buffer > 1:
        stages.append(_SeededShuffle(shuffle_buffer, seed))
    tokenize = functools.partial(_tokenize_one, tokenizer)
    stages += [
        wds.decode("pilrgb", handler=handler),
        wds.to_tuple(IMAGE_KEYS, TEXT_KEY, handler=handler),
        wds.map_tuple(preprocess, tokenize, handler=handler),
        wds.batched(batch_size, partial=not resampled),
    ]
    return wds.DataPipeline(*stages)


def _tokenize_one(tokenizer: Callable, text: str) -> Any:
    return tokenizer([text])[0]


def make_loader(shard_dirs: Sequence[str], preprocess: Callable, tokenizer: Callable,
                batch_size: int, workers: int = 0, seed: int = 0, resampled: bool = True,
                shuffle_buffer: int = 1000) -> wds.WebLoader:
    """A ``wds.WebLoader`` of ``(images, tokens)`` batches over ``shard_dirs``.

    With ``workers=0`` the batch sequence is a function of ``seed`` (and torch's global RNG,
    which the image augmentations draw from). Attributes: ``num_samples`` (sizes.json),
    ``num_batches`` (per pass), ``skipped`` (``SkipCounter`` of dropped samples).
    """
    urls = shard_urls(shard_dirs)
    skipped = SkipCounter()
    pipeline = make_pipeline(urls, preprocess, tokenizer, batch_size, seed=seed,
                             resampled=resampled, shuffle_buffer=shuffle_buffer, handler=skipped)
    loader = wds.WebLoader(pipeline, batch_size=None, shuffle=False, num_workers=workers,
                           persistent_workers=workers > 0)
    loader.num_samples = count_samples(shard_dirs)
    loader.num_batches = max(1, loader.num_samples // batch_size)
    loader.skipped = skipped
    logger.info("loader: %d shards, %d samples (sizes.json), batch %d, %d workers",
                len(urls), loader.num_samples, batch_size, workers)
    return loader
