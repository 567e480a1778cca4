"""trainer.interop: open_clip_train itself trains on our shards, with no --train-num-samples
(it reads sizes.json), using our model JSON."""

import os
import re
import subprocess
import sys

from tests.trainer.conftest import REPO
from trainer.interop import brace_pattern


def test_brace_pattern(shard_dir, tmp_path):
    assert brace_pattern(str(shard_dir)) == os.path.join(str(shard_dir), "{00000..00001}.tar")


def test_open_clip_train_reads_our_shards(shard_dir, micro_model_path, tmp_path):
    logs = tmp_path / "logs"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled",
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "trainer.interop", "--model-config", micro_model_path, "--",
           "--train-data", brace_pattern(str(shard_dir)), "--dataset-type", "webdataset",
           "--batch-size", "40", "--epochs", "1", "--workers", "1", "--precision", "fp32",
           "--device", "cpu", "--logs", str(logs), "--name", "interop", "--log-every-n-steps",
           "1", "--lr", "1e-3", "--warmup", "1", "--save-frequency", "0"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (logs / "interop" / "out.log").read_text()
    steps = re.findall(r"Train Epoch: 0 \[\s*(\d+)/(\d+) .*Loss: ([\d.]+)", log)
    # 80 samples by sizes.json at batch 40: two steps, every sample seen once
    assert [(seen, total) for seen, total, _ in steps] == [("40", "80"), ("80", "80")]
    assert all(float(loss) > 0 for _, _, loss in steps)
