"""Guards the hostile-server suite bites on: byte caps and the total deadline (issue 14 item 9).

The suite (tests/transforms/test_hostile.py) names each misbehaviour's exact reason and a
time bound; with one of these guards off, the cases below end in another reason, or late.
"""

from tests.mutation.registry import Guard
from transforms.http_client import HttpClient

_H = "tests/transforms/test_hostile.py::test_misbehaviour_gets_its_reason_in_bounded_time"
_read_body = HttpClient._read_body  # the real one, called with the cap lifted


def _uncapped_read_body(self, resp, deadline, scope, cap, truncate=False):
    return _read_body(self, resp, deadline, scope, 1 << 40, truncate)


GUARDS = [
    # The watchdog shuts a request's socket at its total deadline: off, a slow-drip server is never cut.
    Guard("deadline_watchdog", "transforms.deadline:Watchdog.attach", lambda self, sock: None,
          (f"{_H}[/slowloris]", f"{_H}[/slow-body.jpg]")),
    # Content-Length over the cap refused before the body (and no huge int from 40 digits).
    Guard("content_length_cap", "transforms.response_headers:declared_length", lambda *a, **k: None,
          (f"{_H}[/length-over-cap.jpg]", f"{_H}[/length-huge.jpg]")),
    # The body counted against fetch.max_bytes as it streams, after Content-Encoding.
    Guard("body_byte_cap", "transforms.http_client:HttpClient._read_body", _uncapped_read_body,
          (f"{_H}[/gzip-bomb.jpg]", f"{_H}[/length-superscript-endless.jpg]", f"{_H}[/endless.jpg]")),
]
