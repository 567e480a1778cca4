"""Guards of the parsers of HTML, URLs and input rows (transforms/html_text.py, srcset.py,
image_source.py, url_guard.py, crawl.py, list_rows.py, url_list.py, imaging.py): each entry's
tests fail with it off. Each target is the name where it is looked up at call time (a module
that did ``from transforms.url_guard import join`` has its own ``join`` to switch off), and
nothing from transforms is imported here at module level."""

import os
import re
from urllib.parse import urljoin

from tests.mutation.registry import Guard

_HTML = "tests/transforms/test_html_text.py"
_SRCSET = "tests/transforms/test_srcset.py"
_SOURCE = "tests/transforms/test_image_source.py"
_EXTRACT = "tests/transforms/test_extract_alt_text.py"
_CRAWL = "tests/transforms/test_crawl.py"
_LIST = "tests/transforms/test_url_list.py"
_SEEDS = "tests/transforms/test_sources.py"
_IMAGING = "tests/transforms/test_imaging.py"


def _plain_parser():
    import lxml.html

    return lxml.html.HTMLParser(encoding="utf-8")  # libxml2's default: stops at depth 256


def _isdigit_int_attr(value):  # before issue 14: "²".isdigit() is True, int("²") raises
    digits = (value or "").strip().lower().removesuffix("px")
    return int(digits) if digits.isdigit() else None


_OLD_NUMBER = re.compile(r"^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")


def _old_density(value):
    return float(value) if _OLD_NUMBER.match(value) and float(value) > 0 else None


def _flatten_first(img, size, resample):  # before issue 14: the full-size RGB copy, then the resize
    from transforms.imaging import _to_rgb

    rgb = _to_rgb(img)
    return rgb if rgb.size == size else rgb.resize(size, resample, reducing_gap=3.0)


GUARDS = [
    # deep pages: every <img> and <a> after thousands of unclosed tags
    Guard("html_deep_reparse", "transforms.html_text:_too_deep", lambda parser: False,
          (f"{_HTML}::test_a_deep_page_is_parsed_completely[div-5000]",
           f"{_EXTRACT}::test_no_image_is_lost_after_thousands_of_unclosed_tags[3000]",
           f"{_CRAWL}::test_links_after_thousands_of_unclosed_tags_are_found[3000]")),
    Guard("html_huge_tree", "transforms.html_text:_new_parser", _plain_parser,
          (f"{_HTML}::test_the_parser_keeps_depths_libxml2_would_cut_at_256",)),
    Guard("html_depth_cap", "transforms.html_text:_at_depth_limit", lambda depth: False,
          (f"{_HTML}::test_past_the_limit_elements_become_siblings_and_keep_their_content",)),
    # charsets: a remote label or a detector's guess must not destroy the page
    Guard("html_charset_labels", "transforms.html_text:web_charset", lambda name: name or None,
          (f"{_HTML}::test_a_charset_label_that_is_no_web_encoding_counts_as_undeclared",)),
    Guard("html_charset_guess_keeps_markup", "transforms.html_text:_keeps_markup", lambda text, html: True,
          (f"{_HTML}::test_a_charset_guess_that_would_destroy_the_markup_is_refused",)),
    # remote numbers: ASCII digits, bounded
    Guard("int_attr_ascii", "transforms.html_text:int_attr", _isdigit_int_attr,
          (f"{_HTML}::test_int_attr_reads_ascii_digits_only_and_bounded",)),
    Guard("int_attr_ascii_in_extraction", "transforms.extract_alt_text:int_attr", _isdigit_int_attr,
          (f"{_EXTRACT}::test_declared_sizes_read_ascii_digits_only",)),
    Guard("srcset_pixels_ascii", "transforms.srcset:_pixels", lambda value: int(value) if value.isdigit() else None,
          (f"{_SRCSET}::test_descriptors_are_ascii_bounded_and_finite",)),
    Guard("srcset_density_finite", "transforms.srcset:_density", _old_density,
          (f"{_SRCSET}::test_descriptors_are_ascii_bounded_and_finite",)),
    # bad URLs: never an exception, always a reason (each where it is used: modules bind the name)
    Guard("url_join_never_raises_extract", "transforms.extract_alt_text:join", urljoin,
          (f"{_EXTRACT}::test_a_bad_base_href_falls_back_to_the_page_url",)),
    Guard("url_join_never_raises_crawl", "transforms.crawl:join", urljoin,
          (f"{_CRAWL}::test_a_bad_base_href_falls_back_to_the_page_url",)),
    Guard("url_join_never_raises_resolve", "transforms.image_source:join", urljoin,
          (f"{_SOURCE}::test_resolve_never_raises_on_a_bad_url",)),
    Guard("url_problem_lists", "transforms.list_rows:url_problem", lambda url, max_chars=2048: "",
          (f"{_LIST}::test_bad_and_over_long_urls_are_rejected_never_cut",)),
    Guard("url_problem_seeds", "transforms.sources:url_problem", lambda url, max_chars=2048: "",
          (f"{_SEEDS}::test_parse_seed_line",)),
    Guard("url_problem_links", "transforms.crawl:url_problem", lambda url, max_chars=2048: "",
          (f"{_CRAWL}::test_a_bad_link_is_skipped_and_the_others_kept",)),
    Guard("url_problem_images", "transforms.image_source:url_problem", lambda url, max_chars=2048: "",
          (f"{_SOURCE}::test_resolve_never_raises_on_a_bad_url",
           f"{_EXTRACT}::test_a_bad_url_in_src_or_srcset_is_bad_url_never_an_exception")),
    Guard("url_length_limit", "transforms.url_guard:too_long", lambda url, max_chars: False,
          (f"{_LIST}::test_bad_and_over_long_urls_are_rejected_never_cut",
           f"{_EXTRACT}::test_over_long_image_urls_are_rejected_with_their_length_never_cut",
           f"{_SEEDS}::test_parse_seed_line")),
    Guard("url_length_limit_links", "transforms.crawl:too_long", lambda url, max_chars: False,
          (f"{_CRAWL}::test_over_long_links_are_skipped_never_cut",)),
    Guard("url_length_limit_plain_paths", "transforms.image_source:too_long", lambda url, max_chars: False,
          (f"{_SOURCE}::test_resolve_refuses_over_long_urls_never_cuts_them",)),
    Guard("srcset_candidate_parses", "transforms.image_source:_usable",
          lambda cands: [c for c in cands if not c.url.startswith("data:")],
          (f"{_EXTRACT}::test_a_bad_url_in_src_or_srcset_is_bad_url_never_an_exception",)),
    # URL lists: encoding policy, keys
    Guard("list_url_strict_utf8", "transforms.list_rows:_utf8_url",
          lambda value: (value.decode("utf-8", errors="replace").strip(), ""),
          (f"{_LIST}::test_one_latin1_byte_in_a_url_rejects_only_that_row",
           f"{_LIST}::test_no_value_is_written_as_str_of_bytes")),
    Guard("list_caption_text", "transforms.list_rows:_caption", lambda value: " ".join(str(value or "").split()),
          (f"{_LIST}::test_no_value_is_written_as_str_of_bytes",)),
    Guard("list_csv_repaired_before_pyarrow", "transforms.list_rows:_valid_utf8", lambda data: True,
          (f"{_LIST}::test_one_latin1_byte_in_a_caption_costs_only_that_caption",
           f"{_LIST}::test_a_malformed_line_with_a_latin1_byte_costs_only_that_line")),
    Guard("list_key_full_path", "transforms.url_list:source_id", lambda path: f"list:{os.path.basename(path)}",
          (f"{_LIST}::test_keys_come_from_the_full_path",)),
    # memory: alpha flattened after the downscale
    Guard("alpha_after_downscale", "transforms.imaging:_rgb_resized", _flatten_first,
          (f"{_IMAGING}::test_peak_memory_of_a_large_rgba_png_is_about_one_decode",)),
]
