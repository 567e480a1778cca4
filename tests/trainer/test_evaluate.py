"""trainer.evaluate on a hand-made model whose embeddings are known."""

import numpy as np
import pytest
import torch
from PIL import Image

from trainer.evaluate import (retrieval_recall, score_pairs, topk_accuracy, zero_shot_accuracy,
                              zero_shot_logits)

WORDS = ["red", "green", "blue"]


class ColourModel(torch.nn.Module):
    """Image embedding = mean RGB; text embedding = one-hot of the colour word (token id)."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def encode_image(self, images, normalize=False):
        x = images.mean(dim=(2, 3)) * self.scale
        return torch.nn.functional.normalize(x, dim=-1) if normalize else x

    def encode_text(self, tokens, normalize=False):
        x = torch.nn.functional.one_hot(tokens[:, 0], 3).float() + 0.01
        return torch.nn.functional.normalize(x, dim=-1) if normalize else x


def tokenizer(texts):
    return torch.tensor([[next(i for i, w in enumerate(WORDS) if w in t)] for t in texts])


def preprocess(image):
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)


RGB = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}


def test_zero_shot_accuracy_separable():
    images = [Image.new("RGB", (8, 8), RGB[w]) for w in ["red", "blue", "green", "red"]]
    templates = ["a {} square", "a photo of {}"]
    assert zero_shot_accuracy(ColourModel(), tokenizer, preprocess, images, [0, 2, 1, 0],
                              WORDS, templates) == 1.0
    assert zero_shot_accuracy(ColourModel(), tokenizer, preprocess, images, [1, 0, 2, 1],
                              WORDS, templates) == 0.0


def test_zero_shot_needs_matching_labels():
    with pytest.raises(ValueError):
        zero_shot_accuracy(ColourModel(), tokenizer, preprocess, [], [], WORDS, ["{}"])


def test_score_pairs_and_mode_restored():
    model = ColourModel().train()
    images = [Image.new("RGB", (8, 8), RGB[w]) for w in ["red", "green"]]
    scores = score_pairs(model, tokenizer, preprocess, images, ["a red dog", "a blue cat"])
    assert scores.dtype == np.float32 and scores.shape == (2,)
    assert scores[0] > 0.99 and scores[1] < 0.05
    assert model.training
    assert score_pairs(model, tokenizer, preprocess, [], []).shape == (0,)


def test_retrieval_recall_known_ranks():
    """Pairs 0..9; text i is closest to image i except that texts 2 and 3 are swapped, and image
    7's text ranks 6th for it (5 better texts)."""
    n = 10
    images = torch.eye(n)
    texts = torch.eye(n)[[0, 1, 3, 2, 4, 5, 6, 7, 8, 9]].clone()
    texts[7] = 0.5 * torch.eye(n)[7]  # image 7 scores 0.5 with its own text...
    texts[0:5, 7] = 0.6  # ...and 0.6 with texts 0-4
    metrics = retrieval_recall(images, texts, ks=(1, 5, 10), chunk=3)
    assert metrics["image_to_text_r1"] == pytest.approx(7 / 10)  # 2, 3 and 7 miss
    assert metrics["image_to_text_r5"] == pytest.approx(9 / 10)  # 7 still misses (rank 6)
    assert metrics["image_to_text_r10"] == 1.0
    assert metrics["text_to_image_r1"] == pytest.approx(8 / 10)  # texts 2 and 3 miss
    with pytest.raises(ValueError):
        retrieval_recall(images, texts[:3])


def test_retrieval_counts_identical_captions_as_hits():
    images = torch.eye(3)
    texts = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # a duplicate
    assert retrieval_recall(images, texts, ks=(1,))["image_to_text_r1"] == 1.0


def test_topk_and_logits():
    logits = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5], [0.1, 0.8, 0.4]])
    assert topk_accuracy(logits, [0, 1, 2], ks=(1, 2, 5)) == pytest.approx(
        {"top1": 1 / 3, "top2": 1.0})
    images = [Image.new("RGB", (8, 8), RGB[w]) for w in ["green", "red"]]
    scores = zero_shot_logits(ColourModel(), tokenizer, preprocess, images, WORDS, ["{}"])
    assert scores.shape == (2, 3) and scores.argmax(dim=1).tolist() == [1, 0]
