"""trainer.evaluate on a hand-made model whose embeddings are known."""

import numpy as np
import pytest
import torch
from PIL import Image

from trainer.evaluate import batch_recall, score_pairs, zero_shot_accuracy

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


def test_batch_recall():
    features = torch.eye(4)
    texts = torch.eye(4)[[0, 1, 3, 2]]  # items 2 and 3 swapped
    hits = batch_recall(features, texts, ks=(1, 2))
    assert hits["image_to_text_r1"] == 2 and hits["text_to_image_r1"] == 2
    assert hits["image_to_text_r2"] == 4
