"""Guards of DataComp compatibility (issue 16 item 4): the uid a URL list carries and the subset
file ``wit export datacomp`` writes. With a guard off a wrong uid would reach the subset file
(or a kept sample would silently miss from it, or the file would not be searchable)."""

from tests.mutation.registry import Guard

_ROWS = "tests/transforms/test_list_rows.py::"
_EXPORT = "tests/pipeline/test_export.py::"


def _any_uid(value):
    """parse_uid without its check: whatever text is there is the uid."""
    text = "" if value is None else str(value).strip().lower()
    return text, ""


def _csv_guessing_types(url_col, caption_col, uid_col):
    import pyarrow as pa

    return {url_col: pa.string(), caption_col: pa.string()}


def _unsorted_subset(uids):
    from pipeline.export import uid_array

    return uid_array(uids)


GUARDS = [
    Guard("list_uid_is_32_hex", "transforms.list_rows:parse_uid", _any_uid,
          (f"{_ROWS}test_parse_uid", f"{_ROWS}test_uid_column_is_carried_in_every_format")),
    Guard("list_csv_uid_read_as_text", "transforms.list_rows:_text_columns", _csv_guessing_types,
          (f"{_ROWS}test_csv_uids_that_look_like_numbers_stay_text",)),
    Guard("export_uids_checked", "pipeline.export:_check_uids", lambda arr: None,
          (f"{_EXPORT}test_uid_array_refuses_what_is_not_32_hex_digits",
           f"{_EXPORT}test_a_uid_that_is_not_datacomps_is_an_error")),
    Guard("export_refuses_missing_uids", "pipeline.export:_refuse_missing", lambda keys, uids: None,
          (f"{_EXPORT}test_samples_without_a_uid_are_an_error_unless_skipped",)),
    Guard("export_subset_sorted_unique", "pipeline.export:subset_array", _unsorted_subset,
          (f"{_EXPORT}test_subset_is_sorted_as_128_bit_numbers_and_each_uid_once",
           f"{_EXPORT}test_export_round_trips_the_kept_uids")),
]
