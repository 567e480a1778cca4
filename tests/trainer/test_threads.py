"""trainer/threads.py: torch threads from the usable cores that other work leaves free."""

import pytest

from trainer import threads


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv("WIT_TORCH_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


def _stat(path, busy, idle):
    # cpu  user nice system idle iowait irq softirq steal
    path.write_text(f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 1 2 3 4\n", encoding="ascii")


def test_one_busy_core_of_two_leaves_one_thread():
    assert threads.pick_threads(cores=2, busy=1.0) == 1
    assert threads.pick_threads(cores=2, busy=0.1) == 2
    assert threads.pick_threads(cores=8, busy=2.6) == 5
    assert threads.pick_threads(cores=2, busy=5.0) == 1  # never below one
    assert threads.pick_threads(cores=1, busy=0.0) == 1


def test_the_environment_wins(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.pick_threads(cores=2, busy=1.0) == 3
    monkeypatch.setenv("WIT_TORCH_THREADS", "1")
    assert threads.pick_threads(cores=8, busy=0.0) == 1
    monkeypatch.setenv("WIT_TORCH_THREADS", "zero")  # not a count: ignored
    assert threads.pick_threads(cores=8, busy=0.0) == 3


def test_busy_cores_from_two_proc_stat_samples(tmp_path, monkeypatch):
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    stat = tmp_path / "stat"
    _stat(stat, busy=1000, idle=1000)
    # over the sample: 100 busy and 100 idle jiffies over 2 CPUs = one core's worth busy
    cores = threads.busy_cores(0.0, str(stat), sleep=lambda s: _stat(stat, busy=1100, idle=1100))
    assert cores == pytest.approx(1.0)
    assert threads.busy_cores(0.0, str(tmp_path / "missing")) == 0.0


def test_cgroup_quota_caps_the_cores(tmp_path):
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("100000 100000\n")
    assert threads.usable_cores(str(cpu_max)) == 1
    cpu_max.write_text("max 100000\n")
    assert threads.usable_cores(str(cpu_max)) >= 1
    assert threads.usable_cores(str(tmp_path / "none")) >= 1
