"""pipeline/runners.py: options and runner choice."""

import os

import pytest

from pipeline.config import CurateConfig, with_overrides
from pipeline.runners import local_workers, make_options
from pipeline.specs import crawl_spec, fetch_spec


def test_options_views_are_built_once_and_share_their_values():
    from apache_beam.options.pipeline_options import SetupOptions, StandardOptions

    options = make_options(["--runner=DirectRunner"])
    assert options.view_as(StandardOptions) is options.view_as(StandardOptions)
    assert options.view_as(SetupOptions).save_main_session is False
    options.view_as(StandardOptions).runner = "Other"
    assert options.get_all_options()["runner"] == "Other"
    assert options.view_as(StandardOptions).view_as(StandardOptions).runner == "Other"


@pytest.mark.parametrize("flags,workers", [
    ([], 1),
    (["--runner", "DirectRunner"], 1),
    (["--direct_running_mode=multi_processing", "--direct_num_workers=2"], 2),
    (["--direct_num_workers=0"], os.cpu_count() or 1),
    (["--runner", "DataflowRunner"], None),
])
def test_local_workers_from_the_runner_flags(flags, workers):
    assert local_workers(make_options(flags)) == workers


def test_one_local_process_fetches_a_host_over_one_key_with_its_whole_budget():
    """max_keys_per_host 0: one key per host on one process, one per worker on several, the host's
    concurrency on any other runner (local_workers None)."""
    cfg = CurateConfig()
    assert cfg.fetch.max_keys_per_host == 0
    assert fetch_spec(cfg, local_workers(make_options([]))).max_keys == 1
    two = local_workers(make_options(["--direct_running_mode=multi_processing", "--direct_num_workers=2"]))
    assert fetch_spec(cfg, two).max_keys == 2 and crawl_spec(cfg, two).max_keys == 2
    dataflow = local_workers(make_options(["--runner", "DataflowRunner"]))
    assert fetch_spec(cfg, dataflow).max_keys == cfg.fetch.per_host_concurrency
    assert crawl_spec(cfg, dataflow).max_keys == cfg.crawl.concurrency


def test_an_explicit_max_keys_per_host_wins_over_the_runner():
    cfg = with_overrides(CurateConfig(), fetch={"max_keys_per_host": 6})
    assert fetch_spec(cfg, 1).max_keys == 6 and fetch_spec(cfg).max_keys == 6
