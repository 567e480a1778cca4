"""trainer.sampling: weighted shard draws, seeds, the cursor stage, seeded collation."""

import itertools

import pytest
import torch

from trainer.sampling import (POSITION_KEY, STREAM_KEY, Cursor, WeightedShards, collate_seeded,
                              mixing_weights, stream_seed)


def test_mixing_weights_give_each_dataset_its_share():
    sizes = [[10, 30], [100]]  # dataset 0: 40 samples in 2 shards; dataset 1: 100 in 1
    probs = mixing_weights(sizes, (1, 1))
    expected_samples = [probs[0] * 10 + probs[1] * 30, probs[2] * 100]
    assert expected_samples[0] == pytest.approx(expected_samples[1])
    assert mixing_weights(sizes) == [1.0, 1.0, 1.0]  # by size: every shard alike
    assert mixing_weights([[5], [0]], (1, 1)) == [0.2, 0.0]
    with pytest.raises(ValueError):
        mixing_weights(sizes, (1,))
    with pytest.raises(ValueError, match="no shard"):
        mixing_weights([[0]])


def test_weighted_shards_are_seeded_and_weighted():
    def draws(seed, weights=None):
        return [d["url"] for d in itertools.islice(WeightedShards(["a", "b"], weights, seed).run(),
                                                   400)]

    assert draws(1) == draws(1) and draws(1) != draws(2)
    assert 0.85 < draws(1, [9, 1]).count("a") / 400 < 0.95


def test_stream_seed_is_the_same_in_every_process():
    # A literal: hash() of a string is salted per process and would differ between runs (and
    # between DataLoader workers started with spawn); blake2b does not.
    assert stream_seed(3, 1, 2) == 1289555763000522022
    assert stream_seed(3, 1, 2) != stream_seed(3, 2, 2) and 0 <= stream_seed(0, 0) < 2**63


def test_cursor_numbers_and_skips():
    samples = ({"__key__": str(i)} for i in range(6))
    out = list(Cursor({0: 4}).run(samples))
    assert [(s["__key__"], s[POSITION_KEY], s[STREAM_KEY]) for s in out] == [("4", 4, 0),
                                                                           ("5", 5, 0)]


def test_collate_seeded_is_repeatable_and_leaves_the_global_rng_alone():
    def noisy(image):
        return torch.rand(2) + image

    batch = [(torch.zeros(2), torch.tensor([i]), {POSITION_KEY: 10 + i, STREAM_KEY: 1})
             for i in range(3)]
    torch.manual_seed(0)
    before = torch.get_rng_state()
    images, tokens, info = collate_seeded(batch, noisy, seed=7)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(images, collate_seeded(batch, noisy, seed=7)[0])
    assert not torch.equal(images, collate_seeded(batch, noisy, seed=8)[0])
    assert tokens.shape == (3, 1) and info["stream"] == 1 and info["next"] == 13
