"""trainer.checkpoint: atomic saves, weights_only loads, resume lookup and checks."""

import logging
import os
from dataclasses import replace

import pytest
import torch

from trainer.checkpoint import (check_compatible, load_training_state, restore, resume_path,
                                save_checkpoints, training_state)
from trainer.config import TrainConfig
from trainer.distributed import World


def _state(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    cfg = TrainConfig(shards=("a",), output=str(tmp_path))
    return model, optimizer, cfg, training_state(model, optimizer, 7, cfg, {0: 12, 1: 9}, World())


def test_round_trip_with_weights_only(tmp_path):
    model, optimizer, cfg, state = _state(tmp_path)
    final = save_checkpoints(state, cfg.output, final=True)
    assert final.endswith("checkpoints/final.pt")
    assert set(torch.load(final, weights_only=True)) == {"state_dict"}
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["epoch_latest.pt", "final.pt"]
    loaded = load_training_state(resume_path(replace(cfg, resume="latest")))
    assert set(loaded) == {"state_dict", "optimizer", "step", "config", "cursor", "rng", "world"}
    fresh = torch.nn.Linear(3, 2)
    fresh_opt = torch.optim.AdamW(fresh.parameters())
    assert restore(fresh, fresh_opt, loaded) == (7, {0: 12, 1: 9})
    assert torch.equal(fresh.weight, model.weight)
    assert fresh_opt.state_dict()["state"][0]["step"] == optimizer.state_dict()["state"][0]["step"]


def test_resume_errors(tmp_path):
    _, _, cfg, state = _state(tmp_path)
    assert resume_path(cfg) is None
    with pytest.raises(FileNotFoundError, match="resume checkpoint not found"):
        resume_path(replace(cfg, resume="latest"))
    final = save_checkpoints(state, cfg.output, final=True)
    with pytest.raises(ValueError, match="cannot be resumed"):
        load_training_state(final)


def test_changed_settings_warn(tmp_path, caplog):
    _, _, cfg, state = _state(tmp_path)
    with caplog.at_level(logging.WARNING, logger="trainer.checkpoint"):
        check_compatible(state, replace(cfg, log_every=1, resume="latest"), World())
        assert not caplog.records
        check_compatible(state, replace(cfg, lr=0.5), World(world_size=2))
    text = caplog.text
    assert "changed settings" in text and "'lr'" in text and "2 ranks" in text
