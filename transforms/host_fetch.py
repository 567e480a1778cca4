"""HostKeyedFetchFn: the DoFn shape of every per-host fetch (images, pages), over host keys.

Input: ``((host, index, count), iterable of items)`` from a GroupByKey after
``KeyByHostShard`` (transforms/host_keys.py); a plain ``(host, items)`` is the whole host.
Output: what the subclass's ``route`` makes of each item's result (a value, or a
``beam.pvalue.TaggedOutput``; ``None`` emits nothing). No drop reasons of its own: ``work``
returns each item's result, ``failed`` the stand-in for an item whose ``work`` raised (the
subclass's ``<stage>.internal_error``).

Politeness budget of a host split over ``count`` keys (transforms/host_share.py):
- concurrency is dealt out: this key runs at most ``share.concurrency(per_host)`` items at once
  (the keys' shares add up to ``per_host``), in a HostScheduler keyed ``(host, index)``;
- spacing is time-sliced: ``work`` gets the key's ``HostShare`` and passes it to
  ``HttpClient.get(..., share=share)`` (or uses ``client_for(self.client, share)``), which starts
  this key's requests only in its own wall-clock slices of the host's interval.

``process`` returns as soon as the key's items are read into the scheduler's buffer (bounded:
``buffer`` items waiting plus ``concurrency`` running, see transforms/fetch_scheduler.py), so
one worker runs several keys at once up to ``concurrency``; results come out of later
``process`` calls as they complete, and the rest in ``finish_bundle``.
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from transforms.fetch_scheduler import DEFAULT_BUFFER, HostScheduler
from transforms.host_share import WHOLE, HostShare
from transforms.http_client import ClientSettings, HttpClient


def share_of_key(key) -> tuple[Any, HostShare]:
    """(scheduler key, HostShare) of a fetch key: ``(host, index, count)``, or a bare host."""
    if isinstance(key, tuple) and len(key) == 3:
        host, index, count = key
        return (host, index), HostShare(index, count)
    return (key, 0), WHOLE


class _ClientShare:
    """An HttpClient seen by one key of a split host: ``get`` passes the key's share."""

    def __init__(self, client: HttpClient, share: HostShare):
        self._client, self.share = client, share

    def get(self, url: str, check_noai: bool = False):
        return self._client.get(url, check_noai, self.share)

    def __getattr__(self, name):
        return getattr(self._client, name)


def client_for(client: HttpClient, share: HostShare):
    """``client`` whose ``get`` spaces requests as key ``share`` of its host (the client itself for WHOLE)."""
    return client if share.whole else _ClientShare(client, share)


class HostKeyedFetchFn(beam.DoFn):
    """Input ((host, index, count), iterable of items). Runs self.work(item, share) for every item in a
    HostScheduler: at most `concurrency` at once in this worker, at most share.concurrency(per_host) for
    this key. Yields self.route(result) (which may return a beam.pvalue.TaggedOutput) for every result,
    in process() as they complete and the rest in finish_bundle (re-windowed into the global window)."""

    def __init__(self, settings: ClientSettings, concurrency: int, per_host: int, buffer: int = DEFAULT_BUFFER):
        self.settings, self.concurrency, self.per_host, self.buffer = settings, concurrency, per_host, buffer
        self.client = self.scheduler = None

    # -- subclass hooks ---------------------------------------------------------------------

    def work(self, item, share: HostShare):
        """The item's result (runs in a scheduler thread)."""
        raise NotImplementedError

    def failed(self, item, exc: Exception):
        """The stand-in result of an item whose ``work`` raised an ``Exception``."""
        raise exc

    def route(self, result):
        """Metrics and tagging of one result: the value to emit (or a TaggedOutput, or None)."""
        return result

    # -- Beam -------------------------------------------------------------------------------

    def setup(self):
        self.client = HttpClient(self.settings)
        self.scheduler = HostScheduler(self._work, self.concurrency, self.per_host,
                                       on_error=self._failed, buffer=self.buffer)

    def teardown(self):
        if self.scheduler is not None:
            self.scheduler.close()
        if self.client is not None:
            self.client.close()

    def _work(self, entry):
        item, share = entry
        return self.work(item, share)

    def _failed(self, entry, exc: Exception):
        return self.failed(entry[0], exc)

    def process(self, element):
        key, items = element
        lane, share = share_of_key(key)
        self.scheduler.add(lane, ((item, share) for item in items), limit=share.concurrency(self.per_host))
        yield from self._routed(self.scheduler.ready())
        # Return once the key's iterable is read into the buffer: a grouped iterable may not
        # outlive this call on every runner. The items keep running while other keys come.
        while self.scheduler.unread(lane):
            yield from self._routed((self.scheduler.wait_one(),))

    def _routed(self, results):
        for result in results:
            routed = self.route(result)
            if routed is not None:
                yield routed

    def finish_bundle(self):
        for routed in self._routed(self.scheduler.drain()):
            if isinstance(routed, beam.pvalue.TaggedOutput):
                yield beam.pvalue.TaggedOutput(routed.tag, WindowedValue(routed.value, 0, [GlobalWindow()]))
            else:
                yield WindowedValue(routed, 0, [GlobalWindow()])
