"""trainer.distributed: helpers, and a real 2-process DDP run (torchrun, CPU, gloo)."""

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from tests.trainer.conftest import REPO
from trainer.distributed import World, gather_dicts, init_distributed, resolve_device, unwrap


def test_single_process_world(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    world = init_distributed("cpu")
    assert world == World() and world.is_main and not world.distributed
    assert gather_dicts({0: 3}, world) == {0: 3}
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("cuda", World(rank=1, local_rank=1, world_size=2)) == torch.device(
        "cuda", 1)


def test_unwrap_compiled_module():
    model = torch.nn.Linear(2, 2)
    assert unwrap(model) is model
    assert unwrap(torch.compile(model, backend="eager")) is model


def test_two_process_ddp_run(micro_model_path, shard_dir, tmp_path):
    """torchrun --nproc-per-node 2 on CPU: features gathered across ranks (the loss starts near
    ln(2 x batch), not ln(batch)), one set of outputs, both ranks' data cursors saved."""
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "trainer.cli", "train", "--shards", str(shard_dir), "--output", str(out),
           "--steps", "3", "--batch-size", "8", "--model", micro_model_path,
           "--set", "device=cpu", "--set", "warmup_steps=1", "--set", "save_every=2",
           "--set", "shuffle_buffer=20", "--set", "log_every=1"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)  # printed by rank 0 only
    assert summary["steps"] == 3
    first = summary["first_loss"]
    assert abs(first - math.log(16)) < abs(first - math.log(8)), first
    latest = torch.load(out / "checkpoints" / "epoch_latest.pt", weights_only=True)
    assert latest["world"]["world_size"] == 2 and latest["step"] == 3
    assert latest["cursor"] == {0: 24, 1: 24}  # 3 batches of 8 from each rank's stream
    assert not any(k.startswith("module.") for k in latest["state_dict"])
    rows = (out / "train_log.csv").read_text().splitlines()
    assert len(rows) == 4  # header + 3 steps, written once


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_device_per_rank():
    assert resolve_device("auto", World(rank=0, local_rank=0, world_size=2)).type == "cuda"
