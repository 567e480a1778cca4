"""trainer.data: webdataset loader over our shards."""

import itertools

import pytest
import torch

from tests.trainer.conftest import square_samples, write_shards
from trainer.data import count_samples, make_loader, shard_urls


def _batches(loader, n):
    return list(itertools.islice(iter(loader), n))


def test_batches_have_the_right_shapes(shard_dir, tiny_model):
    _, preprocess_train, _, tokenizer = tiny_model
    loader = make_loader([str(shard_dir)], preprocess_train, tokenizer, batch_size=16)
    assert loader.num_samples == 80 and loader.num_batches == 5
    for images, tokens in _batches(loader, 7):  # resampled: more batches than one pass
        assert images.shape == (16, 3, 64, 64) and images.dtype == torch.float32
        assert tokens.shape == (16, 32) and tokens.dtype == torch.long
    assert loader.skipped.count == 0


def test_same_seed_same_batches(shard_dir, tiny_model):
    _, _, preprocess_val, tokenizer = tiny_model

    def tokens(seed):
        loader = make_loader([str(shard_dir)], preprocess_val, tokenizer, 8, seed=seed,
                             shuffle_buffer=50)
        return torch.cat([t for _, t in _batches(loader, 6)])

    assert torch.equal(tokens(3), tokens(3))
    assert not torch.equal(tokens(3), tokens(4))


def test_one_pass_keeps_every_sample_and_partial_batch(shard_dir, tiny_model):
    _, _, preprocess_val, tokenizer = tiny_model
    loader = make_loader(str(shard_dir), preprocess_val, tokenizer, 32, resampled=False,
                         shuffle_buffer=0)
    assert [len(images) for images, _ in loader] == [32, 32, 16]
    keys = [tuple(t.tolist()) for _, tokens in loader for t in tokens]
    assert len(keys) == 80  # a second pass works too


def test_corrupt_and_incomplete_samples_are_skipped_and_counted(tmp_path, tiny_model):
    _, _, preprocess_val, tokenizer = tiny_model
    samples = square_samples(0, 10, seed=0)
    samples[3]["image"] = b"\xff\xd8 not a jpeg"
    samples[5]["ext"] = "gif"  # no jpg/png/webp member: cannot make a pair
    root = write_shards(tmp_path / "bad", [samples])
    loader = make_loader([str(root)], preprocess_val, tokenizer, 4, resampled=False)
    assert sum(len(images) for images, _ in loader) == 8
    assert loader.skipped.count == 2


def test_several_dirs_and_sizes(tmp_path):
    a = write_shards(tmp_path / "a", [square_samples(0, 3, seed=0)])
    b = write_shards(tmp_path / "b", [square_samples(3, 4, seed=0), square_samples(7, 2, seed=0)])
    assert count_samples([str(a), str(b)]) == 9
    assert [p.split("/")[-2:] for p in shard_urls([str(a), str(b)])] == [
        ["a", "00000.tar"], ["b", "00000.tar"], ["b", "00001.tar"]]


def test_no_shards_is_an_error(tmp_path, tiny_model):
    with pytest.raises(FileNotFoundError, match="no .tar shards"):
        make_loader([str(tmp_path)], tiny_model[1], tiny_model[3], 4)
