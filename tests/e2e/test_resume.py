"""--resume: a `wit curate` killed half way (SIGKILL) and continued gives an uninterrupted run's output.

The first run is a real `wit curate` process on the sample web, its image responses
slowed down so that it is killed while images are being fetched (checkpoint files of
FetchImages outcomes exist, stats.json does not). The resumed run must fetch fewer
images than the whole site has (saved outcomes reused by key) and write the same
bytes as an uninterrupted run of the same config: shards, rejections, embeddings,
stats.json. The saved work (OUT/_work) is gone afterwards.
"""

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipeline.build import Inputs
from pipeline.config import CONFIG_DIR, load_config
from pipeline.run import CannotResume, OutputExists, run_curation
from pipeline.sample import SampleServer, generate_site
from transforms.checkpoint import WORK_DIR, list_files, work_dir

# Scoring and near dedupe off: deterministic (tests/e2e/test_sample_web.py) and costly here.
OVERRIDES = ["fetch.allow_private_networks=true", "output.checkpoint_every=8", "score.enabled=false", "dedupe.near=false"]
PROJECT = CONFIG_DIR.parent


class _CountingResources(dict):
    """The site's resources, counting image requests and optionally slowing them down."""

    def __init__(self, resources):
        super().__init__(resources)
        self.lock = threading.Lock()
        self.image_requests = 0
        self.delay_s = 0.0

    def get(self, path, default=None):
        if path.startswith("/img") or path.endswith((".jpg", ".png", ".webp", ".gif")):
            with self.lock:
                self.image_requests += 1
            if self.delay_s:
                time.sleep(self.delay_s)
        return super().get(path, default)


def _files(out: Path) -> dict:
    """Every output file's bytes, but those that differ by design between reruns (run_info.json)."""
    from pipeline.shard_format import VOLATILE_FILES

    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and str(p.relative_to(out)) not in VOLATILE_FILES}


def _start_killable_run(seeds: Path, out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "pipeline.cli", "curate", "--config", str(CONFIG_DIR / "sample.yaml"),
           "--seeds", str(seeds), "--output", str(out)]
    for item in OVERRIDES:
        cmd += ["--set", item]
    env = dict(os.environ, PYTHONPATH=str(PROJECT))
    return subprocess.Popen(cmd, cwd=str(PROJECT), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _kill_when_saved(proc: subprocess.Popen, out: Path, min_files: int = 3, timeout_s: float = 120.0) -> int:
    """SIGKILL ``proc`` as soon as ``min_files`` checkpoint files exist; returns how many there were."""
    saved = work_dir(str(out), "fetched")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if os.path.isdir(saved) and len(list_files(saved)) >= min_files:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            return len(list_files(saved))
        time.sleep(0.02)
    proc.kill()
    _, err = proc.communicate(timeout=30)
    pytest.fail(f"the run ended (rc {proc.returncode}) before it could be killed half way: {err[-2000:]!r}")


def test_resume_after_sigkill_equals_uninterrupted_run(tmp_path):
    base_site = generate_site(seed=0)
    resources = _CountingResources(base_site.resources)
    site = dataclasses.replace(base_site, resources=resources)
    cfg = load_config([CONFIG_DIR / "sample.yaml"], OVERRIDES)
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    with SampleServer(site) as server:
        seeds = tmp_path / "seeds.txt"
        seeds.write_text("\n".join(server.seed_urls) + "\n")
        resources.delay_s = 0.05  # the killed run fetches slowly, so the kill lands half way
        saved_files = _kill_when_saved(_start_killable_run(seeds, killed), killed)
        resources.delay_s = 0.0
        assert saved_files >= 3 and not (killed / "stats.json").exists()
        with pytest.raises(OutputExists, match="--resume"):
            run_curation(cfg, Inputs(seeds_file=str(seeds)), str(killed))
        with pytest.raises(CannotResume, match="differs"):
            other = load_config([CONFIG_DIR / "sample.yaml"], OVERRIDES + ["score.min_score=0.5"])
            run_curation(other, Inputs(seeds_file=str(seeds)), str(killed), resume=True)

        before = resources.image_requests
        stats = run_curation(cfg, Inputs(seeds_file=str(seeds)), str(killed), resume=True)
        resumed_requests = resources.image_requests - before
        before = resources.image_requests
        run_curation(cfg, Inputs(seeds_file=str(seeds)), str(reference))
        full_requests = resources.image_requests - before

    assert stats["accounting_ok"]
    assert 0 < resumed_requests < full_requests, (resumed_requests, full_requests)
    assert not (killed / WORK_DIR).exists() and not (reference / WORK_DIR).exists()
    got, want = _files(killed), _files(reference)
    assert sorted(got) == sorted(want)
    differ = [name for name in want if got[name] != want[name]]
    assert not differ, differ
