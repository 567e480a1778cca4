"""Guards of the web-archive readers (transforms/warc*.py, transforms/wat.py), each switched off in turn."""

from __future__ import annotations

import sys

from tests.mutation.registry import Guard

W = "tests/transforms/test_warc.py::"
WAT = "tests/transforms/test_wat.py::"
E2E = "tests/transforms/test_warc_pipeline.py::test_warc_and_wat_round_trip_through_curate"


def _usable_captures_only(captures):
    """The old rule: only captures with usable bytes count, so the others' pairs are fetched live."""
    from transforms.warc import _capture_rank
    usable = [c for c in captures if c is not None and not c.reason]
    return max(usable, key=_capture_rank, default=None)


def _record_outputs_unguarded(record, limits, spec, warnings):
    from transforms import warc_records
    return list(warc_records.record_outputs(record, limits, spec))


def _link_unguarded(*args):
    from transforms import wat
    return wat._link_outcome(*args)


GUARDS = [
    Guard("warc.archived_image_never_fetched_live", "transforms.warc:best_capture", _usable_captures_only,
          (E2E,)),
    Guard("warc.image_capture_recognised", "transforms.warc_records:capture_is_image", lambda *a, **k: False,
          (W + "test_every_image_capture_has_an_archived_outcome",)),
    Guard("warc.archived_noai", "transforms.warc_records:noai_token", lambda *a, **k: None,
          (W + "test_every_record_has_one_kind",)),
    Guard("warc.archived_defects", "transforms.warc_records:image_defect", lambda *a, **k: None,
          (W + "test_noai_is_ignored_when_not_respected_and_caps_apply", W + "test_every_record_has_one_kind")),
    Guard("warc.record_cut_short", "transforms.warc_records:_cut_short", lambda *a, **k: False,
          (W + "test_a_record_cut_short_is_truncated_and_counted",)),
    Guard("warc.record_isolation", "transforms.warc_reader:isolated_outputs", _record_outputs_unguarded,
          (W + "test_an_unexpected_exception_on_one_record_costs_that_record_only",
           WAT + "test_a_wat_record_that_breaks_is_one_page_failure")),
    Guard("warc.warcio_errors_are_unreadable", "transforms.warc_reader:_raised_in_warcio", lambda *a, **k: False,
          (W + "test_a_record_warcio_itself_trips_on_is_unreadable_and_reading_resumes",)),
    Guard("warc.arc_read", "transforms.warc_reader:is_arc", lambda *a, **k: False,
          (W + "test_arc_files_are_read", W + "test_arc_and_warc_files_are_found_and_read_by_content")),
    Guard("warc.whole_file_gzip_read", "transforms.warc_reader:_whole_file_gzip", lambda *a, **k: False,
          (W + "test_a_whole_file_gzip_is_read_whole",)),
    Guard("warc.resume_after_unreadable", "transforms.warc_reader:find_next_record", lambda *a, **k: None,
          (W + "test_unreadable_gives_the_file_the_offset_and_the_error_and_reading_resumes",)),
    Guard("warc.broken_gzip_member_reported", "transforms.warc_reader:_broken", lambda *a, **k: False,
          (W + "test_a_gzip_member_that_stops_decoding_is_reported_and_reading_resumes",)),
    Guard("warc.file_cut_inside_a_record_reported", "transforms.warc_reader:_ends_inside_record",
          lambda *a, **k: False, (W + "test_a_file_cut_inside_a_record_is_reported",)),
    Guard("warc.warnings_not_printed", "transforms.warc_warnings:_SysProxy.stderr",
          property(lambda self: sys.stderr), (W + "test_warcio_warnings_are_counted_not_printed",)),
    Guard("wat.link_isolation", "transforms.wat:_isolated_link", _link_unguarded,
          (WAT + "test_an_unexpected_exception_on_one_link_costs_that_link",)),
    Guard("wat.page_opt_out", "transforms.wat:_page_opt_out", lambda *a, **k: None,
          (WAT + "test_page_opt_outs_in_wat_metas_reject_every_image",)),
    Guard("wat.url_length", "transforms.wat:url_too_long", lambda *a, **k: False,
          (WAT + "test_hostile_link_values_end_as_pairs_or_rejections",)),
]
