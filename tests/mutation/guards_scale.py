"""Guards of a hot host split over several keys (issue 15 item 1): its politeness stays global.

With a guard off the split keys would overrun the host's budget (each key the whole
concurrency, or request starts not time-sliced), or one worker would run its keys one at a
time again; the loopback server of tests/transforms/test_fetch_split.py sees it.
"""

import math

from tests.mutation.registry import Guard
from transforms.host_fetch import share_of_key
from transforms.host_share import slot_length, start_window

_S = "tests/transforms/test_fetch_split.py::"
_H = "tests/transforms/test_host_share.py::"


def _whole_concurrency(_self, total):
    return max(1, total)


def _any_slot(share, interval, earliest, after=-1):
    return max(after + 1, math.ceil((earliest - start_window(interval)) / slot_length(interval)))


def _process_until_started(self, element):
    """process() as before the buffer: return only once every item of the key has started."""
    key, items = element
    lane, share = share_of_key(key)
    self.scheduler.add(lane, ((item, share) for item in items), limit=share.concurrency(self.per_host))
    yield from self._routed(self.scheduler.ready())
    while self.scheduler.pending(lane):
        yield from self._routed((self.scheduler.wait_one(),))


GUARDS = [
    Guard("host_concurrency_dealt_out", "transforms.host_share:HostShare.concurrency", _whole_concurrency,
          (_S + "test_a_split_host_keeps_its_concurrency_and_the_keys_run_at_once",)),
    Guard("host_spacing_time_sliced", "transforms.http_client:HttpClient._wait_for_turn",
          lambda self, host, share, interval: None,
          (_S + "test_a_split_host_keeps_its_request_spacing",)),
    Guard("host_slots_owned_per_key", "transforms.host_share:first_slot", _any_slot,
          (_S + "test_a_split_host_keeps_its_request_spacing", _H + "test_each_key_owns_every_count_th_slot")),
    Guard("host_keys_run_at_once", "transforms.host_fetch:HostKeyedFetchFn.process", _process_until_started,
          (_S + "test_a_split_host_keeps_its_concurrency_and_the_keys_run_at_once",)),
]
