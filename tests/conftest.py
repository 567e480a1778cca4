"""Shared test setup: offline always, Beam on its Python FnApiRunner (never Prism)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

import pytest  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402
from apache_beam.testing.test_pipeline import TestPipeline  # noqa: E402

from pipeline.runners import make_runner  # noqa: E402


def local_test_pipeline() -> TestPipeline:
    options = PipelineOptions([])
    return TestPipeline(runner=make_runner(options), options=options)


@pytest.fixture
def beam_pipeline():
    return local_test_pipeline()


def counter(result, name: str) -> int:
    """The committed value of a ``wit`` Beam counter after ``result.wait_until_finish()``."""
    from pipeline.metrics import NAMESPACE

    return sum(c.committed for c in result.metrics().query()["counters"]
               if c.key.metric.namespace == NAMESPACE and c.key.metric.name == name)
