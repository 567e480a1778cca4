"""trainer.loop: a short real training run on coloured squares."""

import csv
import os

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from tests.trainer.conftest import COLOURS, TINY_MODEL, square_samples, write_shards
from trainer.config import TrainConfig, load_train_config
from trainer.evaluate import zero_shot_accuracy
from trainer.loop import param_groups, train
from trainer.model import create_model


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """30 steps at batch 16 on 2 shards x 40 samples; (cfg, result)."""
    root = tmp_path_factory.mktemp("loop")
    shards = write_shards(root / "shards", [square_samples(0, 40, seed=1),
                                            square_samples(40, 40, seed=2)])
    cfg = TrainConfig(model=TINY_MODEL, shards=(str(shards),), batch_size=16, steps=30,
                      lr=1e-3, warmup_steps=5, log_every=10, save_every=20,
                      shuffle_buffer=80, output=str(root / "out"), device="cpu")
    return cfg, train(cfg)


def test_loss_decreases(run):
    _, result = run
    assert result.steps == 30 and len(result.losses) == 30
    assert np.isfinite(result.losses).all()
    first, last = np.mean(result.losses[:5]), np.mean(result.losses[-5:])
    assert last < 0.75 * first, (first, last)
    assert result.final_loss == result.losses[-1]
    assert result.samples_per_s > 0 and result.skipped_samples == 0


def test_outputs_written(run):
    cfg, result = run
    with open(os.path.join(cfg.output, "train_log.csv")) as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [10, 20, 30]
    assert set(rows[0]) == {"step", "loss", "lr", "samples_per_s"}
    assert load_train_config(os.path.join(cfg.output, "run_config.yaml"), {}) == cfg
    latest = torch.load(os.path.join(cfg.output, "checkpoints", "epoch_latest.pt"),
                        weights_only=True)
    assert latest["step"] == 30 and latest["config"]["steps"] == 30
    assert set(latest) == {"state_dict", "optimizer", "step", "config"}
    final = torch.load(result.checkpoint_path, weights_only=True)
    assert set(final) == {"state_dict"}
    assert all(torch.equal(final["state_dict"][k], v) for k, v in latest["state_dict"].items())
    assert float(final["state_dict"]["logit_scale"]) <= np.log(100) + 1e-6
    ckpt_dir = os.path.dirname(result.checkpoint_path)
    assert not any(name.endswith(".tmp") for name in os.listdir(ckpt_dir))


def test_final_checkpoint_loads_in_open_clip(run):
    _, result = run
    name = "wit-tiny"  # registered by the run
    loaded, _, preprocess = open_clip.create_model_and_transforms(
        name, pretrained=result.checkpoint_path)
    ours, _, _, tokenizer = create_model(TINY_MODEL, pretrained=result.checkpoint_path)
    reference, _, _, _ = create_model(TINY_MODEL)
    reference.load_state_dict(torch.load(result.checkpoint_path, weights_only=True)["state_dict"])
    images = torch.stack([preprocess(Image.new("RGB", (64, 64), c)) for c in COLOURS.values()])
    texts = tokenizer([f"a {c} square" for c in COLOURS])
    outputs = []
    for model in (loaded, ours, reference):
        model.eval()
        with torch.no_grad():
            outputs.append((model.encode_image(images), model.encode_text(texts)))
    for image_features, text_features in outputs[1:]:
        assert torch.equal(image_features, outputs[0][0])
        assert torch.equal(text_features, outputs[0][1])


def test_trained_model_separates_colours(run):
    _, result = run
    model, _, preprocess, tokenizer = create_model(TINY_MODEL, pretrained=result.checkpoint_path)
    names = ["red", "green", "blue", "yellow"]
    images = [Image.new("RGB", (64, 64), COLOURS[n]) for n in names]
    accuracy = zero_shot_accuracy(model, tokenizer, preprocess, images, [0, 1, 2, 3], names,
                                  ["a {} square"])
    assert accuracy >= 0.5  # chance is 0.25; typically 1.0 after 30 steps


def test_same_seed_same_losses(shard_dir, tmp_path):
    def losses(out):
        return train(TrainConfig(model=TINY_MODEL, shards=(str(shard_dir),), batch_size=8,
                                 steps=3, warmup_steps=1, output=str(tmp_path / out),
                                 shuffle_buffer=20, device="cpu")).losses

    assert losses("a") == losses("b")


def test_weight_decay_groups(tiny_model):
    model = tiny_model[0]
    no_decay, decay = param_groups(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    assert no_decay["weight_decay"] == 0 and decay["weight_decay"] == 0.1
    assert "logit_scale" in {names[id(p)] for p in no_decay["params"]}
    assert "token_embedding.weight" in {names[id(p)] for p in decay["params"]}
    assert all(p.ndim >= 2 for p in decay["params"])
    assert len(no_decay["params"]) + len(decay["params"]) == len(list(model.parameters()))


def test_no_shards_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no shards"):
        train(TrainConfig(model=TINY_MODEL, output=str(tmp_path)))
