"""Shared test setup: offline always, Beam on its Python FnApiRunner (never Prism)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
# Training threads as torch's default (one per usable core), not sampled from the load
# (trainer/threads.py): a test that compares two runs must not see two thread counts.
os.environ.setdefault("WIT_TORCH_THREADS", str(len(os.sched_getaffinity(0))))

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402
from apache_beam.testing.test_pipeline import TestPipeline  # noqa: E402

from pipeline.runners import make_runner  # noqa: E402

# Property-based fuzz tests (marked ``fuzz``): a small, reproducible example count in the
# suite; ``python -m bench.fuzz`` runs them long and random (profile "fuzz").
_FUZZ_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=int(os.environ.get("WIT_FUZZ_EXAMPLES", "40")),
                          derandomize=True, database=None, **_FUZZ_COMMON)
settings.register_profile("fuzz", max_examples=int(os.environ.get("WIT_FUZZ_EXAMPLES", "3000")),
                          **_FUZZ_COMMON)
settings.load_profile(os.environ.get("WIT_HYPOTHESIS_PROFILE", "ci"))


def local_test_pipeline() -> TestPipeline:
    options = PipelineOptions([])
    return TestPipeline(runner=make_runner(options), options=options)


@pytest.fixture
def beam_pipeline():
    return local_test_pipeline()


@pytest.fixture(autouse=True)
def _fresh_site_answers():
    """robots.txt / tdmrep.json answers and slow-host marks live per process
    (transforms/robots.py): a loopback port reused by a later test must not see an
    earlier test's answers."""
    from transforms import robots

    robots.clear_caches()
    yield


def counter(result, name: str) -> int:
    """The committed value of a ``wit`` Beam counter after ``result.wait_until_finish()``."""
    from pipeline.metrics import NAMESPACE

    return sum(c.committed for c in result.metrics().query()["counters"]
               if c.key.metric.namespace == NAMESPACE and c.key.metric.name == name)
