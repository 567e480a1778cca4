"""pipeline/runners.py: options and runner choice."""

import os

import pytest

from pipeline.config import CurateConfig, with_overrides
from pipeline.runners import local_workers, make_options, with_local_keys
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
    """max_keys_per_host 0: one key per host on one process, one per worker on several; the spec
    caps the keys at the host's concurrency when nothing resolved it (any other runner)."""
    cfg = CurateConfig()
    assert cfg.fetch.max_keys_per_host == 0
    assert fetch_spec(with_local_keys(cfg, make_options([]))).max_keys == 1
    two = with_local_keys(cfg, make_options(["--direct_running_mode=multi_processing", "--direct_num_workers=2"]))
    assert fetch_spec(two).max_keys == 2 and crawl_spec(two).max_keys == 2
    dataflow = with_local_keys(cfg, make_options(["--runner", "DataflowRunner"]))
    assert dataflow == cfg
    assert fetch_spec(dataflow).max_keys == cfg.fetch.per_host_concurrency
    assert crawl_spec(dataflow).max_keys == cfg.crawl.concurrency


def test_an_explicit_max_keys_per_host_wins_over_the_runner():
    cfg = with_overrides(CurateConfig(), fetch={"max_keys_per_host": 6})
    assert with_local_keys(cfg, make_options([])) == cfg
    assert fetch_spec(cfg).max_keys == 6
