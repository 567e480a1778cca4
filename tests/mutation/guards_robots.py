"""Guards of robots.txt, the AI opt-outs sent by servers and the bounded waits (issue 14 items 3, 5, 6)."""

from tests.mutation.registry import Guard
from transforms.robots import RobotsPolicy

_R = "tests/transforms/test_robots.py"
_T = "tests/transforms/test_tdmrep.py"
_H = "tests/transforms/test_http_client.py"

GUARDS = [
    Guard("robots_disallow", "transforms.robots:RobotsPolicy.allows", lambda self, url: True,
          (f"{_R}::test_rfc9309_matching", f"{_H}::test_robots_is_fetched_once_and_honoured",
           f"{_R}::test_robots_redirects_are_followed_five_hops")),
    Guard("robots_unavailable_disallows", "transforms.robots:policy_for_failure",
          lambda kind, status, detail: RobotsPolicy.absent(detail),
          (f"{_R}::test_robots_5xx_disallows_all_as_robots_unavailable", f"{_R}::test_unreachable_robots_disallows_all",
           f"{_R}::test_status_handling_rfc9309_2_3_1")),
    Guard("robots_bom_stripped", "transforms.robots:_strip_bom", lambda body: body,
          (f"{_R}::test_rfc9309_matching",)),
    Guard("x_robots_tag_noai", "transforms.response_headers:noai_directive", lambda *a, **k: None,
          (f"{_H}::test_x_robots_tag_headers_sent_apart_are_read_apart", f"{_H}::test_noai_header_stops_before_body")),
    Guard("tdm_reservation_header", "transforms.tdmrep:header_reserved", lambda *a, **k: False,
          (f"{_T}::test_tdm_reservation_header_is_decided_before_the_body",
           f"{_T}::test_tdm_reservation_header_on_a_page_is_crawl_tdm_reserved")),
    Guard("tdmrep_json_rule", "transforms.tdmrep:TdmRules.reserving_rule", lambda self, url: None,
          (f"{_T}::test_tdmrep_json_refuses_before_the_request_is_sent", f"{_T}::test_tdmrep_location_rules")),
    Guard("host_too_slow_bound", "transforms.http_client:_delay_too_long", lambda *a, **k: False,
          (f"{_H}::test_crawl_delay_above_the_bound_fails_at_once",
           f"{_H}::test_retry_after_above_the_bound_marks_the_host_too_slow")),
]
