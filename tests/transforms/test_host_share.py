"""transforms/host_share.py: a split host's request spacing, time-sliced by the wall clock."""

import threading
import time

import pytest

from transforms.host_share import SLACK, HostShare, TimeSlices, first_slot, slot_length, start_window


@pytest.mark.parametrize("count", [2, 3, 8])
def test_each_key_owns_every_count_th_slot(count):
    interval = 0.5
    for index in range(count):
        share = HostShare(index, count)
        slots, after = [], -1
        for _ in range(5):
            after = first_slot(share, interval, 1000.0, after)
            slots.append(after)
        assert all(s % count == index for s in slots)
        assert slots == sorted(set(slots)) and all(b - a == count for a, b in zip(slots, slots[1:]))
        # The first slot's start window is still open at `earliest`, the key's one before it closed.
        assert slots[0] * slot_length(interval) + start_window(interval) >= 1000.0
        assert (slots[0] - count) * slot_length(interval) + start_window(interval) < 1000.0


def test_starts_in_different_slots_are_at_least_the_interval_apart():
    interval = 0.2
    # The worst case: one key starts at the very end of slot n's window, the next at slot n+1's start.
    latest_in_n = 10 * slot_length(interval) + start_window(interval)
    earliest_in_next = 11 * slot_length(interval)
    assert earliest_in_next - latest_in_n == pytest.approx(interval)
    assert SLACK > 0


class _FakeClock:
    def __init__(self, now: float, oversleep: float = 0.0):
        self.now, self.oversleep = now, oversleep
        self.lock = threading.Lock()

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds + self.oversleep


def test_time_slices_take_distinct_slots_and_skip_one_woken_too_late():
    clock = _FakeClock(5000.0)
    slices = TimeSlices(clock.time, clock.sleep)
    share = HostShare(1, 4)
    starts = [slices.wait("h", share, 0.1) for _ in range(3)]
    length = slot_length(0.1)
    assert [round(s / length) % 4 for s in starts] == [1, 1, 1]
    assert [round((b - a) / length) for a, b in zip(starts, starts[1:])] == [4, 4]
    # A sleep that overshoots the start window loses the slot: the key's next one is taken.
    once = _FakeClock(5000.0)
    sleeps = []

    def late_once(seconds):
        sleeps.append(seconds)
        once.sleep(seconds + (start_window(0.1) * 2 if len(sleeps) == 1 else 0.0))

    got = TimeSlices(once.time, late_once).wait("h", share, 0.1)
    assert len(sleeps) == 2 and round(got / length) % 4 == 1 and once.now == pytest.approx(got)
    # A worker that always oversleeps gives up after give_up_s (no wait is unbounded).
    late = _FakeClock(5000.0, oversleep=start_window(0.1) * 2)
    assert TimeSlices(late.time, late.sleep).wait("h", share, 0.1, give_up_s=3.0) is None
    assert 5003.0 < late.now < 5003.0 + 4 * length + 1


def test_time_slices_respect_not_before():
    clock = _FakeClock(100.0)
    start = TimeSlices(clock.time, clock.sleep).wait("h", HostShare(0, 2), 0.1, not_before=130.0)
    assert 130.0 - start_window(0.1) <= start <= 130.0 + 2 * slot_length(0.1)


def test_keys_in_threads_of_one_process_take_distinct_slots_and_never_start_early():
    """Real clock: 3 keys, 2 threads each, 4 starts per thread."""
    interval, slices, starts, lock = 0.02, TimeSlices(), [], threading.Lock()

    def run(share):
        for _ in range(4):
            slot_start = slices.wait("h", share, interval)
            woke = time.time()
            with lock:
                starts.append((slot_start, woke, share.index))

    threads = [threading.Thread(target=run, args=(HostShare(i, 3),)) for i in range(3) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    starts.sort()
    assert len(starts) == 24 and all(woke >= slot_start for slot_start, woke, _ in starts)
    length = slot_length(interval)
    slots = [round(slot_start / length) for slot_start, _, _ in starts]
    assert len(set(slots)) == 24 and all(n % 3 == index for n, (_, _, index) in zip(slots, starts))
