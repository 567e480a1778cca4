"""trainer.config: YAML + overrides -> validated TrainConfig."""

from pathlib import Path

import pytest

from trainer.config import TrainConfig, load_train_config

REPO = Path(__file__).resolve().parents[2]


def test_defaults_without_file():
    cfg = load_train_config(None, {})
    assert cfg == TrainConfig()


def test_repo_tiny_yaml_loads():
    cfg = load_train_config(str(REPO / "configs" / "train" / "tiny.yaml"), {})
    assert cfg.model == "configs/models/wit-tiny.json"
    assert cfg.batch_size == 64 and cfg.lr == pytest.approx(1e-3)


def test_yaml_then_overrides_with_string_values(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("batch_size: 32\nlr: 3.0e-4\nshards: [a, b]\n")
    cfg = load_train_config(str(path), {"lr": "1e-4", "steps": "1e3", "image_size": "none",
                                        "shards": "x,y"})
    assert cfg.batch_size == 32
    assert cfg.lr == pytest.approx(1e-4)
    assert cfg.steps == 1000 and isinstance(cfg.steps, int)
    assert cfg.image_size is None
    assert cfg.shards == ("x", "y")


def test_section_form(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("train:\n  steps: 7\n")
    assert load_train_config(str(path), {}).steps == 7


@pytest.mark.parametrize("text, overrides, match", [
    ("batch_sise: 3\n", {}, r"unknown train config key\(s\) \['batch_sise'\]"),
    ("", {"learning_rate": "1"}, "unknown train config key"),
    ("steps: 0\n", {}, "steps must be >= 1"),
    ("precision: fp16\n", {}, "precision must be one of"),
    ("", {"steps": "ten"}, "steps: expected int"),
    ("", {"batch_size": "1.5"}, "batch_size: expected an integer"),
    ("- a\n- b\n", {}, "expected a mapping"),
])
def test_errors(tmp_path, text, overrides, match):
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_train_config(str(path), overrides)


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        load_train_config("/nonexistent/train.yaml", {})


def test_frozen_and_shards_tuple():
    cfg = TrainConfig(shards=["a"])
    assert cfg.shards == ("a",)
    with pytest.raises(AttributeError):
        cfg.steps = 3


def test_new_fields_from_strings():
    cfg = load_train_config(None, {"compile": "true", "tensorboard": "off", "accum_steps": "4",
                                   "loss": "siglip", "shards": "a,b", "shard_weights": "3,1",
                                   "resume": "latest"})
    assert cfg.compile is True and cfg.tensorboard is False and cfg.accum_steps == 4
    assert cfg.loss == "siglip" and cfg.shard_weights == (3.0, 1.0) and cfg.resume == "latest"


@pytest.mark.parametrize("overrides, match", [
    ({"loss": "triplet"}, "loss must be one of"),
    ({"sample_weight": "clip_score", "loss": "siglip"}, "needs loss=clip"),
    ({"sample_weight": "length"}, "sample_weight must be one of"),
    ({"shards": "a,b", "shard_weights": "1"}, "shard_weights has 1 values for 2"),
    ({"shards": "a", "shard_weights": "0"}, "must be > 0"),
    ({"accum_steps": "0"}, "accum_steps must be >= 1"),
    ({"compile": "maybe"}, "compile: expected true or false"),
])
def test_new_field_errors(overrides, match):
    with pytest.raises(ValueError, match=match):
        load_train_config(None, overrides)
