"""Guards of the report's rejection thumbnails and URLs (issue 17 item 5).

With a guard off a pre-download rejection (dedupe.url, fetch.*) would be shown another
pair's image (the same key downloaded for a page read twice), a rejection would get the
thumbnail of a different image under its key, the dead loopback URLs of a finished run
would be live links again, or a robots.txt that could not be fetched would count as an opt-out.
"""

from tests.mutation.registry import Guard
from transforms.image_store import image_bytes
from transforms.reject_thumbnails import make_thumbnail

_T = "tests/transforms/test_reject_thumbnails.py::"
_R = "tests/pipeline/report/test_render_html.py::"
_C = "tests/pipeline/report/test_content.py::"
_M = "tests/pipeline/report/test_terminal.py::"


class _EveryStage(frozenset):
    """Guard off: every stage's rejections are joined with the downloaded images."""

    def __contains__(self, item):
        return True


def _first_image_under_the_key(rejection, refs, spec):
    from dataclasses import replace

    return replace(rejection, thumbnail=make_thumbnail(image_bytes(refs[0]), spec)) if refs else rejection


GUARDS = [
    Guard("thumbnails_only_after_download", "transforms.reject_thumbnails:POST_DOWNLOAD_STAGES",
          _EveryStage(), (_T + "test_only_pairs_dropped_after_download_get_a_thumbnail",)),
    Guard("thumbnail_of_the_pairs_own_image", "transforms.reject_thumbnails:with_thumbnail",
          _first_image_under_the_key, (_T + "test_the_thumbnail_is_of_the_rejected_pairs_own_image",)),
    Guard("dead_crawled_urls_are_not_links", "pipeline.report.render_html:_public_host", lambda host: True,
          (_R + "test_which_crawled_urls_become_links",
           _R + "test_crawled_urls_are_marked_and_the_dead_loopback_ones_are_no_links")),
    Guard("robots_unavailable_is_not_an_opt_out", "pipeline.report.content:NOT_OPT_OUT", frozenset(),
          (_C + "test_failed_pages_and_opt_out_view",
           _M + "test_robots_unavailable_is_not_in_the_opt_out_table",
           _R + "test_robots_unavailable_is_not_an_opt_out")),
]
