"""trainer.loop: real training runs on coloured squares (tiny model), and the loop's features on
the micro model: exact resume, accumulation, SigLIP, clip_score weights, torch.compile."""

import copy
import csv
import functools
import os
from dataclasses import replace

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

import trainer.loop as loop
from tests.trainer.conftest import COLOURS, TINY_MODEL, square_samples, write_shards
from trainer.config import TrainConfig, load_train_config
from trainer.evaluate import zero_shot_accuracy
from trainer.loop import param_groups, train, train_step
from trainer.losses import make_loss
from trainer.model import create_model


@pytest.fixture(scope="module")
def run(tmp_path_factory, micro_model_path):
    """25 steps at batch 16 on 2 shards x 40 samples with the micro model; (cfg, result)."""
    root = tmp_path_factory.mktemp("loop")
    shards = write_shards(root / "shards", [square_samples(0, 40, seed=1),
                                            square_samples(40, 40, seed=2)])
    cfg = TrainConfig(model=micro_model_path, shards=(str(shards),), batch_size=16, steps=25,
                      lr=1e-3, warmup_steps=5, log_every=10, save_every=20,
                      shuffle_buffer=80, output=str(root / "out"), device="cpu")
    return cfg, train(cfg)


def test_loss_decreases(run):
    _, result = run
    assert result.steps == 25 and len(result.losses) == 25 and result.start_step == 0
    assert np.isfinite(result.losses).all()
    first, last = np.mean(result.losses[:5]), np.mean(result.losses[-5:])
    assert last < 0.75 * first, (first, last)
    assert result.final_loss == result.losses[-1]
    assert result.samples_per_s > 0 and result.skipped_samples == 0


def test_outputs_written(run):
    cfg, result = run
    with open(os.path.join(cfg.output, "train_log.csv")) as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [10, 20, 25]
    assert set(rows[0]) == {"step", "loss", "lr", "samples_per_s"}
    assert os.listdir(os.path.join(cfg.output, "tensorboard"))
    assert load_train_config(os.path.join(cfg.output, "run_config.yaml"), {}) == cfg
    latest = torch.load(os.path.join(cfg.output, "checkpoints", "epoch_latest.pt"),
                        weights_only=True)
    assert latest["step"] == 25 and latest["config"]["steps"] == 25
    assert set(latest) == {"state_dict", "optimizer", "step", "config", "cursor", "rng", "world"}
    assert latest["cursor"] == {0: 25 * 16}  # one stream (rank 0, no workers), 25 batches
    final = torch.load(result.checkpoint_path, weights_only=True)
    assert set(final) == {"state_dict"}
    assert all(torch.equal(final["state_dict"][k], v) for k, v in latest["state_dict"].items())
    assert float(final["state_dict"]["logit_scale"]) <= np.log(100) + 1e-6
    ckpt_dir = os.path.dirname(result.checkpoint_path)
    assert not any(name.endswith(".tmp") for name in os.listdir(ckpt_dir))


def test_final_checkpoint_loads_in_open_clip(run):
    _, result = run
    loaded, _, preprocess = open_clip.create_model_and_transforms(
        "wit-test-micro", pretrained=result.checkpoint_path)  # registered by the run
    ours, _, _, tokenizer = create_model(run[0].model, pretrained=result.checkpoint_path)
    images = torch.stack([preprocess(Image.new("RGB", (32, 32), c)) for c in COLOURS.values()])
    texts = tokenizer([f"a {c} square" for c in COLOURS])
    outputs = []
    for model in (loaded, ours):
        model.eval()
        with torch.no_grad():
            outputs.append((model.encode_image(images), model.encode_text(texts)))
    assert torch.equal(outputs[0][0], outputs[1][0]) and torch.equal(outputs[0][1], outputs[1][1])


def test_trained_model_separates_colours(run):
    _, result = run
    model, _, preprocess, tokenizer = create_model(run[0].model, pretrained=result.checkpoint_path)
    names = ["red", "green", "blue", "yellow"]
    images = [Image.new("RGB", (32, 32), COLOURS[n]) for n in names]
    accuracy = zero_shot_accuracy(model, tokenizer, preprocess, images, [0, 1, 2, 3], names,
                                  ["a {} square"])
    assert accuracy >= 0.5  # chance is 0.25; typically 1.0


def _micro_cfg(micro_model_path, shard_dir, out, **kw):
    values = dict(model=micro_model_path, shards=(str(shard_dir),), batch_size=8, steps=6,
                  warmup_steps=1, shuffle_buffer=20, output=str(out), device="cpu",
                  save_every=3, log_every=1, tensorboard=False)
    values.update(kw)
    return TrainConfig(**values)


@pytest.mark.parametrize("workers, accum", [(0, 2), (2, 1)])
def test_resume_continues_exactly(micro_model_path, shard_dir, tmp_path, monkeypatch,
                                  workers, accum):
    """6 steps straight == a run killed in step 5 (checkpoint at 3) resumed to 6: same losses,
    same weights, same CSV."""
    cfg = _micro_cfg(micro_model_path, shard_dir, tmp_path / "a", workers=workers,
                     accum_steps=accum)
    straight = train(cfg)
    calls = {"n": 0}

    def crash_in_step_5(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("killed")
        return train_step(*args, **kwargs)

    monkeypatch.setattr(loop, "train_step", crash_in_step_5)
    with pytest.raises(KeyboardInterrupt):
        train(replace(cfg, output=str(tmp_path / "b")))
    monkeypatch.setattr(loop, "train_step", train_step)
    resumed = train(replace(cfg, output=str(tmp_path / "b"), resume="latest"))
    assert resumed.start_step == 3 and len(resumed.losses) == 3
    assert resumed.losses == straight.losses[3:]
    weights = [torch.load(r.checkpoint_path, weights_only=True)["state_dict"]
               for r in (straight, resumed)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    logs = [open(os.path.join(p, "train_log.csv")).read() for p in (tmp_path / "a", tmp_path / "b")]
    assert [line.split(",")[:2] for line in logs[0].splitlines()] == [
        line.split(",")[:2] for line in logs[1].splitlines()]


def _group(micro_model, shard_dir, n_batches, batch_size):
    from trainer.data import make_loader

    loader = make_loader([str(shard_dir)], micro_model[2], micro_model[3], batch_size,
                         shuffle_buffer=0)
    it = iter(loader)
    return [next(it) for _ in range(n_batches)]


def test_accumulation_equals_one_big_batch(micro_model, shard_dir):
    """Feature caching: 2 micro-batches of 8 give the loss and update of one batch of 16."""
    (images_a, tokens_a, info_a), (images_b, tokens_b, info_b) = _group(
        micro_model, shard_dir, 2, 8)
    big = [(torch.cat([images_a, images_b]), torch.cat([tokens_a, tokens_b]),
            {"meta": info_a["meta"] + info_b["meta"]})]
    results = []
    for group, accum in ((big, 1), ([(images_a, tokens_a, info_a), (images_b, tokens_b, info_b)], 2)):
        model = copy.deepcopy(micro_model[0]).train()
        cfg = TrainConfig(accum_steps=accum, lr=1e-3, grad_clip=0, sample_weight="clip_score")
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)  # update = gradient
        loss = train_step(model, group, make_loss("clip"), optimizer, cfg, torch.device("cpu"))
        results.append((loss, model.state_dict()))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-5)
    for key, value in results[0][1].items():
        torch.testing.assert_close(value, results[1][1][key], rtol=1e-4, atol=1e-6)
    assert not torch.equal(results[0][1]["logit_scale"], micro_model[0].logit_scale)


def test_siglip_weighted_and_compiled_runs(micro_model_path, shard_dir, tmp_path, monkeypatch):
    siglip = train(_micro_cfg(micro_model_path, shard_dir, tmp_path / "s", steps=3,
                              loss="siglip"))
    state = torch.load(siglip.checkpoint_path, weights_only=True)["state_dict"]
    assert np.isfinite(siglip.losses).all() and "logit_bias" in state
    model, _, _, _ = create_model(micro_model_path, pretrained=siglip.checkpoint_path)
    assert torch.equal(model.logit_bias.detach(), state["logit_bias"])

    weighted = train(_micro_cfg(micro_model_path, shard_dir, tmp_path / "w", steps=2,
                                sample_weight="clip_score"))
    assert np.isfinite(weighted.losses).all()

    # torch.compile with the eager backend: the wrapping, not inductor's minutes of C++.
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    compiled = train(_micro_cfg(micro_model_path, shard_dir, tmp_path / "c", steps=2,
                                compile=True))
    keys = torch.load(compiled.checkpoint_path, weights_only=True)["state_dict"]
    assert not any(k.startswith(("_orig_mod.", "module.")) for k in keys)


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
