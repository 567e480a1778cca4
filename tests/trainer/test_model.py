"""trainer.model: open_clip factory from a model JSON; clear errors for missing weights."""

import json
import math

import open_clip
import pytest
import torch

from tests.trainer.conftest import TINY_MODEL
from trainer.model import count_parameters, create_model, has_logit_bias, register_model_config


def test_tiny_model_builds_and_encodes(tiny_model):
    model, preprocess_train, preprocess_val, tokenizer = tiny_model
    tokens = tokenizer(["a red square", "a blue square"])
    assert tokens.shape == (2, 32) and tokens.dtype == torch.long
    from PIL import Image
    image = preprocess_val(Image.new("RGB", (100, 80), (255, 0, 0)))
    assert image.shape == (3, 64, 64)
    assert preprocess_train(Image.new("RGB", (30, 30))).shape == (3, 64, 64)
    model.eval()
    with torch.no_grad():
        out = model(image[None], tokens[:1])
    assert out["image_features"].shape == (1, 128) == out["text_features"].shape
    # The token embedding (49408 x 128) is most of it; keep the model small for CPU.
    assert 5e6 < count_parameters(model) < 10e6


def test_register_uses_file_stem(tmp_path):
    cfg = json.load(open(TINY_MODEL))
    cfg["text_cfg"]["layers"] = 1
    path = tmp_path / "wit-test-one-layer.json"
    path.write_text(json.dumps(cfg))
    assert register_model_config(str(path)) == "wit-test-one-layer"
    assert "wit-test-one-layer" in open_clip.list_models()
    model, _, _, _ = create_model(str(path))
    assert len(model.transformer.resblocks) == 1


def test_not_a_model_config(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"embed_dim": 8}))
    with pytest.raises(ValueError, match="missing"):
        create_model(str(path))


def test_missing_model_config():
    with pytest.raises(FileNotFoundError, match="model config not found"):
        create_model("/nonexistent/wit-x.json")


def test_missing_local_weights_say_how_to_supply():
    with pytest.raises(FileNotFoundError, match="Supply a local checkpoint"):
        create_model(TINY_MODEL, pretrained="/nonexistent/final.pt")


def test_unknown_tag_for_builtin_model_fails_before_building():
    with pytest.raises(FileNotFoundError, match="known tags: .*laion2b_s34b_b79k"):
        create_model("ViT-B-32", pretrained="no-such-tag")


def test_relative_model_path_resolves_from_any_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert register_model_config("configs/models/wit-tiny.json") == "wit-tiny"


def test_siglip_model_gets_open_clip_trains_init(micro_model_path, tmp_path):
    model, _, _, _ = create_model(micro_model_path, siglip=True)
    assert model.logit_bias.item() == -10.0
    assert model.logit_scale.item() == pytest.approx(math.log(10))
    plain, _, _, _ = create_model(micro_model_path)
    assert plain.logit_bias is None
    # weights that carry a logit_bias get a model with one, without being told
    path = tmp_path / "siglip.pt"
    with torch.no_grad():
        model.logit_bias.fill_(-3.5)
    torch.save({"state_dict": model.state_dict()}, path)
    assert has_logit_bias(str(path)) and not has_logit_bias(str(tmp_path / "none.pt"))
    loaded, _, _, _ = create_model(micro_model_path, pretrained=str(path))
    assert loaded.logit_bias.item() == -3.5
