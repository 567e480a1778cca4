"""trainer.data: webdataset loaders over our shards (training: resumable, mixed; eval: one pass)."""

import itertools

import pytest
import torch

from tests.trainer.conftest import square_samples, write_shards
from trainer.data import SkipCounter, count_samples, make_loader, shard_urls


def _batches(loader, n):
    return list(itertools.islice(iter(loader), n))


def test_training_batches_have_shapes_and_metadata(shard_dir, tiny_model):
    _, preprocess_train, _, tokenizer = tiny_model
    loader = make_loader([str(shard_dir)], preprocess_train, tokenizer, batch_size=16)
    assert loader.num_samples == 80 and loader.num_batches == 5
    for images, tokens, info in _batches(loader, 7):  # resampled: more batches than one pass
        assert images.shape == (16, 3, 64, 64) and images.dtype == torch.float32
        assert tokens.shape == (16, 32) and tokens.dtype == torch.long
        assert len(info["meta"]) == 16 and info["stream"] == 0 and info["skipped"] == 0
        meta = info["meta"][0]
        assert meta["clip_score"] == 0.3 and meta["caption"].endswith("square")
        assert meta["__key__"] == meta["key"] and meta["__url__"].endswith(".tar")
    assert info["next"] == 7 * 16  # stream position after the 7th batch


def test_same_seed_same_batches(shard_dir, tiny_model):
    _, _, preprocess_val, tokenizer = tiny_model

    def tokens(seed):
        loader = make_loader([str(shard_dir)], preprocess_val, tokenizer, 8, seed=seed,
                             shuffle_buffer=50)
        return torch.cat([t for _, t, _ in _batches(loader, 6)])

    assert torch.equal(tokens(3), tokens(3))
    assert not torch.equal(tokens(3), tokens(4))


@pytest.mark.parametrize("workers", [0, 2])
def test_cursor_continues_the_stream_exactly(shard_dir, micro_model, workers):
    """Batches 3.. of a loader == the batches of a new loader started from the cursor after 3
    (augmented images included: they are seeded per batch, not by what came before)."""
    _, preprocess_train, _, tokenizer = micro_model

    def loader(**kw):
        return make_loader([str(shard_dir)], preprocess_train, tokenizer, 8, seed=5,
                           shuffle_buffer=30, workers=workers, **kw)

    straight = _batches(loader(), 6)
    cursor = {}
    for _, _, info in straight[:3]:
        cursor[info["stream"]] = info["next"]
    resumed = _batches(loader(cursor=cursor, offset=3), 3)
    for (im_a, tok_a, info_a), (im_b, tok_b, info_b) in zip(straight[3:], resumed):
        assert torch.equal(im_a, im_b) and torch.equal(tok_a, tok_b)
        assert info_a["stream"] == info_b["stream"] and info_a["next"] == info_b["next"]


def test_directories_mixed_by_weight(tmp_path, micro_model):
    _, _, preprocess_val, tokenizer = micro_model
    a = write_shards(tmp_path / "a", [square_samples(0, 8, seed=0)])  # 8 samples
    b = write_shards(tmp_path / "b", [square_samples(8, 30, seed=0),   # 60 samples
                                      square_samples(38, 30, seed=0)])
    loader = make_loader([str(a), str(b)], preprocess_val, tokenizer, 20, weights=(3, 1),
                         shuffle_buffer=100)
    urls = [m["__url__"] for _, _, info in _batches(loader, 30) for m in info["meta"]]
    share_a = sum("/a/" in u for u in urls) / len(urls)
    assert 0.65 < share_a < 0.85, share_a  # 0.75 asked; by size it would be 8/68 = 0.12


def test_one_pass_keeps_every_sample_and_partial_batch(shard_dir, tiny_model):
    _, _, preprocess_val, tokenizer = tiny_model
    loader = make_loader(str(shard_dir), preprocess_val, tokenizer, 32, resampled=False,
                         shuffle_buffer=0)
    assert [len(images) for images, _ in loader] == [32, 32, 16]
    keys = [tuple(t.tolist()) for _, tokens in loader for t in tokens]
    assert len(keys) == 80  # a second pass works too


def test_corrupt_and_incomplete_samples_are_skipped_and_counted(tmp_path, micro_model):
    _, _, preprocess_val, tokenizer = micro_model
    samples = square_samples(0, 10, seed=0)
    samples[3]["image"] = b"\xff\xd8 not a jpeg"
    samples[5]["ext"] = "gif"  # no jpg/png/webp member: cannot make a pair
    root = write_shards(tmp_path / "bad", [samples])
    loader = make_loader([str(root)], preprocess_val, tokenizer, 4, resampled=False)
    assert sum(len(images) for images, _ in loader) == 8
    assert loader.skipped.count == 2
    train_loader = make_loader([str(root)], preprocess_val, tokenizer, 4, shuffle_buffer=0)
    batches = _batches(train_loader, 8)  # 32 samples: the 10-sample shard drawn 4 times
    assert 6 <= batches[-1][2]["skipped"] == train_loader.skipped.count <= 8


def test_skip_counter_stops_an_all_corrupt_stream():
    counter = SkipCounter(max_logged=0, max_consecutive=3)
    assert all(counter(ValueError("x")) for _ in range(3))
    counter.ok()
    assert all(counter(ValueError("x")) for _ in range(3))
    assert counter(ValueError("x")) is False and counter.count == 7


def test_several_dirs_and_sizes(tmp_path):
    a = write_shards(tmp_path / "a", [square_samples(0, 3, seed=0)])
    b = write_shards(tmp_path / "b", [square_samples(3, 4, seed=0), square_samples(7, 2, seed=0)])
    assert count_samples([str(a), str(b)]) == 9
    assert [p.split("/")[-2:] for p in shard_urls([str(a), str(b)])] == [
        ["a", "00000.tar"], ["b", "00000.tar"], ["b", "00001.tar"]]


def test_no_shards_is_an_error(tmp_path, micro_model):
    with pytest.raises(FileNotFoundError, match="no .tar shards"):
        make_loader([str(tmp_path)], micro_model[1], micro_model[3], 4)
