"""webdataset loaders over our shards (DESIGN.md §6).

Input: shard directories holding ``NNNNN.tar`` (members ``{key}.jpg|png|webp``, ``{key}.txt``,
``{key}.json``) and ``sizes.json``; an image transform and an open_clip tokenizer.
Output: a ``wds.WebLoader`` with ``num_samples`` (from sizes.json), ``num_batches`` and
``skipped`` (a ``SkipCounter``) attached as attributes, as open_clip_train does, yielding

* training (``resampled=True``): ``(images [B,3,H,W] float, tokens [B,ctx] long, info)``, endless:
  shards drawn with replacement (several directories mixed by weight), a shuffle buffer, and
  ``info`` = ``{"meta": [the sample's .json dict + __key__, __url__], "stream", "next",
  "skipped"}``; resumable from a cursor (see ``trainer.sampling``);
* evaluation (``resampled=False``): ``(images, tokens)``, one pass, last batch partial.

Dropped: samples whose image does not decode, or that lack an image or caption member (warned
and counted: ``loader.skipped`` in the loading process; ``info["skipped"]`` per stream).

Built as an explicit ``wds.DataPipeline`` rather than ``wds.WebDataset`` because the latter
cannot seed its shard resampler or sample shuffle, and runs must be repeatable for a seed.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any, Callable, Mapping, Optional, Sequence

import webdataset as wds

from pipeline.shard_format import list_tars, read_sizes
from trainer.sampling import (Cursor, SeededShuffle, WeightedShards, collate_seeded,
                              mixing_weights)

logger = logging.getLogger(__name__)

IMAGE_KEYS = "jpg;png;webp"
TEXT_KEY = "txt"
META_KEY = "json"


class SkipCounter:
    """A webdataset handler: log the exception, count it, continue with the next sample.

    After ``max_consecutive`` failures in a row (``ok()`` resets the run) it stops the stream,
    so an endless resampled stream of nothing but corrupt samples ends instead of spinning.
    """

    def __init__(self, max_logged: int = 20, max_consecutive: int = 10_000) -> None:
        self.count = self.consecutive = 0
        self.max_logged, self.max_consecutive = max_logged, max_consecutive

    def __call__(self, exn: Exception) -> bool:
        self.count += 1
        self.consecutive += 1
        if self.count <= self.max_logged:
            logger.warning("skipping sample: %s: %s", type(exn).__name__, exn)
        if self.consecutive > self.max_consecutive:
            logger.error("%d samples in a row failed; stopping the stream", self.consecutive)
            return False
        return True

    def ok(self) -> None:
        self.consecutive = 0


def _as_list(shard_dirs: Sequence[str] | str) -> list[str]:
    return [shard_dirs] if isinstance(shard_dirs, str) else list(shard_dirs)


def shard_urls(shard_dirs: Sequence[str]) -> list[str]:
    """All tar paths of ``shard_dirs``, in directory then shard order."""
    urls: list[str] = []
    for shard_dir in _as_list(shard_dirs):
        tars = list_tars(shard_dir)
        if not tars:
            raise FileNotFoundError(f"no .tar shards in {shard_dir}")
        urls.extend(tars)
    return urls


def shard_sizes(shard_dir: str) -> list[int]:
    """Samples per tar of ``shard_dir`` by its sizes.json (tars missing from it count 0)."""
    sizes = read_sizes(shard_dir)
    counts = []
    for tar in list_tars(shard_dir):
        name = os.path.basename(tar)
        if name not in sizes:
            logger.warning("%s is not in %s/sizes.json; its samples are not counted",
                           name, shard_dir)
        counts.append(sizes.get(name, 0))
    return counts


def count_samples(shard_dirs: Sequence[str]) -> int:
    """Samples in ``shard_dirs`` according to their sizes.json."""
    return sum(sum(shard_sizes(d)) for d in _as_list(shard_dirs))


def _tokenize_one(tokenizer: Callable, text: str) -> Any:
    return tokenizer([text])[0]


def _train_sample(tokenizer: Callable, skipped: SkipCounter, sample: dict) -> tuple:
    """A decoded sample -> ``(PIL image, tokens, meta)``; no image or caption raises (skipped)."""
    image = next((sample[k] for k in IMAGE_KEYS.split(";") if k in sample), None)
    if image is None or TEXT_KEY not in sample:
        raise KeyError(f"{sample.get('__key__')}: needs an image ({IMAGE_KEYS}) and a "
                       f"{TEXT_KEY} member, has {sorted(k for k in sample if k[0] != '_')}")
    meta = sample.get(META_KEY)
    meta = dict(meta) if isinstance(meta, dict) else {}
    meta.update({k: v for k, v in sample.items() if k.startswith("__")})
    tokens = _tokenize_one(tokenizer, sample[TEXT_KEY])
    skipped.ok()
    return image, tokens, meta


def _collate(preprocess: Callable, seed: int, skipped: SkipCounter, samples: list) -> tuple:
    images, tokens, info = collate_seeded(samples, preprocess, seed)
    info["skipped"] = skipped.count  # this stream's count so far (its worker's own counter)
    return images, tokens, info


def train_pipeline(urls: Sequence[str], preprocess: Callable, tokenizer: Callable,
                   batch_size: int, seed: int = 0, shuffle_buffer: int = 1000,
                   shard_probs: Optional[Sequence[float]] = None, rank: int = 0,
                   cursor: Optional[Mapping[int, int]] = None, offset: int = 0,
                   handler: Callable = wds.warn_and_continue) -> wds.DataPipeline:
    """Endless ``(images, tokens, info)`` batches; see the module doc and ``trainer.sampling``.

    ``offset``: batches already handed out by earlier loaders (rotates the logical workers).
    """
    stages: list[Any] = [WeightedShards(urls, shard_probs, seed, rank, offset),
                         wds.tarfile_to_samples(handler=handler)]
    if shuffle_buffer > 1:
        stages.append(SeededShuffle(shuffle_buffer, seed, rank, offset))
    skipped = handler if isinstance(handler, SkipCounter) else SkipCounter()
    stages += [
        Cursor(cursor, rank, offset),
        wds.decode("pilrgb", handler=handler),
        wds.map(functools.partial(_train_sample, tokenizer, skipped), handler=handler),
        wds.batched(batch_size, partial=False,
                    collation_fn=functools.partial(_collate, preprocess, seed, skipped)),
    ]
    return wds.DataPipeline(*stages)


def eval_pipeline(urls: Sequence[str], preprocess: Callable, tokenizer: Callable,
                  batch_size: int, handler: Callable = wds.warn_and_continue
                  ) -> wds.DataPipeline:
    """One pass over every shard (each worker taking its share): ``(images, tokens)``."""
    return wds.DataPipeline(
        wds.SimpleShardList(list(urls)), wds.split_by_worker,
        wds.tarfile_to_samples(handler=handler),
        wds.decode("pilrgb", handler=handler),
        wds.to_tuple(IMAGE_KEYS, TEXT_KEY, handler=handler),
        wds.map_tuple(preprocess, functools.partial(_tokenize_one, tokenizer), handler=handler),
        wds.batched(batch_size, partial=True),
    )


def make_loader(shard_dirs: Sequence[str], preprocess: Callable, tokenizer: Callable,
                batch_size: int, workers: int = 0, seed: int = 0, resampled: bool = True,
                shuffle_buffer: int = 1000, weights: Sequence[float] = (), rank: int = 0,
                cursor: Optional[Mapping[int, int]] = None, offset: int = 0) -> wds.WebLoader:
    """A ``wds.WebLoader`` over ``shard_dirs``: training batches when ``resampled``, else one
    evaluation pass (``seed``, ``shuffle_buffer``, ``weights``, ``cursor`` then unused).

    ``weights``: one per directory, the share of samples it supplies (default: by size).
    Training batches are a function of (seed, rank, logical worker) only, with any number of
    workers. Attributes: ``num_samples`` (sizes.json), ``num_batches`` (per pass), ``skipped``.
    """
    dirs = _as_list(shard_dirs)
    skipped = SkipCounter()
    urls = shard_urls(dirs)
    if resampled:
        probs = mixing_weights([shard_sizes(d) for d in dirs], weights)
        pipeline = train_pipeline(urls, preprocess, tokenizer, batch_size, seed=seed,
                                  shuffle_buffer=shuffle_buffer, shard_probs=probs, rank=rank,
                                  cursor=cursor, offset=offset, handler=skipped)
    else:
        pipeline = eval_pipeline(urls, preprocess, tokenizer, batch_size, handler=skipped)
    loader = wds.WebLoader(pipeline, batch_size=None, shuffle=False, num_workers=workers,
                           persistent_workers=workers > 0)
    loader.num_samples = count_samples(dirs)
    loader.num_batches = max(1, loader.num_samples // batch_size)
    loader.skipped = skipped
    logger.info("loader: %d shards in %d dirs, %d samples (sizes.json), batch %d, %d workers",
                len(urls), len(dirs), loader.num_samples, batch_size, workers)
    return loader
