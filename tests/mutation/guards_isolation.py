"""Guards of per-item fault isolation (issue 14 item 1): each ``off`` puts the bare call back.

With a guard off, the bug a test plants for one item escapes again: the test's run
raises (or its item no longer ends as ``*.internal_error``), so the test fails.
``off`` looks the bare function up at call time, so the test's injected bug is what runs.
"""

from urllib.parse import urlsplit

import transforms.crawl as crawl_mod
import transforms.extract_alt_text as extract_mod
import transforms.fetch as fetch_mod
import transforms.hashing as hashing_mod
import transforms.sources as sources_mod
from tests.mutation.registry import Guard

_T = "tests/transforms/test_fault_isolation.py::"


def _reraise(_self, failed):
    raise failed.exc


def _raise(_pair, exc):
    raise exc


def _reraise_image(_fetched, exc):
    raise exc


GUARDS = [
    Guard("resize_images_isolated", "transforms.resize:image_internal_error", _reraise_image,
          ("tests/transforms/test_resize_pipeline.py::test_a_bug_on_one_archived_image_is_its_internal_error",)),
    Guard("scheduler_failed_item", "transforms.fetch_scheduler:HostScheduler._failed", _reraise,
          (_T + "test_scheduler_hands_the_failed_item_back_and_keeps_going",
           _T + "test_scheduler_frees_the_host_slot_of_a_failed_call",
           _T + "test_fetch_images_pipeline_turns_one_bug_into_one_rejection")),
    Guard("fetch_download_internal_error", "transforms.fetch:download_failed", _raise,
          (_T + "test_fetch_images_pipeline_turns_one_bug_into_one_rejection",)),
    Guard("fetch_resize_isolated", "transforms.fetch:resize_isolated",
          lambda fetched, spec, pool=None: fetch_mod.resize_fetched(fetched, spec, pool),
          (_T + "test_fetch_and_resize_isolates_each_phase",
           _T + "test_fetch_images_pipeline_turns_one_bug_into_one_rejection")),
    Guard("fetch_host_of_total", "transforms.fetch:host_of",
          lambda pair: urlsplit(pair.image_url).netloc.lower(),
          (_T + "test_host_of_never_raises",)),
    Guard("crawl_fetch_page_isolated", "transforms.crawl:fetch_page_isolated",
          lambda client, url, depth, max_bytes: crawl_mod._fetch_page(client, url, depth, max_bytes),
          (_T + "test_client_bug_on_one_page_loses_only_that_page",
           _T + "test_fetch_pages_pipeline_counts_the_internal_error")),
    Guard("crawl_visit_isolated", "transforms.crawl:visit_isolated",
          lambda page, host, same_host: crawl_mod._visit(page, host, same_host),
          (_T + "test_link_extraction_bug_on_one_page_loses_only_that_page",)),
    Guard("crawl_duplicate_isolated", "transforms.crawl:duplicate_isolated",
          lambda duplicates, url, visit: duplicates.check_url(url, visit.canonical, visit.digest),
          (_T + "test_duplicate_check_bug_is_isolated_too",)),
    Guard("crawl_seed_key_isolated", "transforms.crawl:seed_key_isolated",
          lambda url: (urlsplit(crawl_mod.normalize_url(url)).netloc, crawl_mod.normalize_url(url)),
          (_T + "test_a_seed_that_trips_a_bug_is_a_page_failure_and_the_others_crawl",)),
    Guard("extract_isolated", "transforms.extract_alt_text:extract_isolated",
          lambda page, spec: extract_mod.extract_pairs(page.html, page.url, page.content_type, spec),
          (_T + "test_extract_bug_on_one_page_is_one_rejection_keyed_by_the_page",)),
    Guard("seed_line_isolated", "transforms.sources:parse_seed_isolated",
          lambda line: sources_mod.parse_seed_line(line),
          (_T + "test_seed_line_bug_is_a_page_failure",
           _T + "test_read_seeds_without_failures_keeps_its_one_output")),
    Guard("rule_check_isolated", "filters.base:check_isolated",
          lambda rule, record: rule.check(record),
          (_T + "test_caption_rule_bug_rejects_that_pair_only",
           _T + "test_a_rule_names_its_stage_internal_error")),
    Guard("hash_isolated", "transforms.hashing:hash_isolated",
          lambda image, spec: hashing_mod.hash_resized(image, spec),
          (_T + "test_hashing_bug_leaves_that_image_unhashed",)),
    Guard("curate_exit_code_on_internal_errors", "pipeline.run:internal_error_count",
          lambda stats: 0,
          ("tests/pipeline/test_cli.py::test_curate_with_internal_errors_completes_exits_3_and_resumes",)),
]
