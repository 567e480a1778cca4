"""FetchImages over a hot host split into several keys: the host's limits hold for the host as a whole.

A loopback server (127.0.0.1, port 0) records how many image requests it serves at once and
when each one arrives; FetchImages runs over one host with a small ``urls_per_key``.
"""

import hashlib
import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline as _TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from PIL import Image

from pipeline.records import AltPair
from pipeline.runners import make_runner
from pipeline.specs import client_settings, fetch_spec, resize_spec
from tests.conftest import local_test_pipeline
from tests.default_specs import spec_with
from transforms.fetch import FetchImages
from transforms.host_share import start_window
from transforms.http_client import ClientSettings

# Server arrival times carry the client's send path after its start decision (the GIL, thread
# wake-ups on both sides, a descheduled process on a busy machine): a gap may look this much
# shorter than the client's start gap. Without the time slices the keys start at once (gap ~0).
ARRIVAL_JITTER_S = 0.025


def _jpeg(path: str) -> bytes:
    seed = hashlib.sha256(path.encode()).digest()
    image = Image.new("RGB", (24 + seed[0] % 16, 20 + seed[1] % 16), tuple(seed[2:5]))
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    delay_s = 0.0
    lock = threading.Lock()
    active = 0
    peak = 0
    starts: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        path = self.path.split("?")[0]
        if not path.endswith(".jpg"):  # robots.txt, tdmrep.json: 404, allow all
            self._send(404, b"no", "text/plain")
            return
        cls = type(self)
        with cls.lock:
            cls.starts.append(time.time())
            cls.active += 1
            cls.peak = max(cls.peak, cls.active)
        try:
            time.sleep(cls.delay_s)
            if path.startswith("/missing"):
                self._send(404, b"gone", "text/plain")
            else:
                self._send(200, _jpeg(path), "image/jpeg")
        finally:
            with cls.lock:
                cls.active -= 1

    def _send(self, status, body, mime):
        self.send_response(status)
        self.send_header("Content-Type", mime)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def recorder():
    handler = type("Recorder", (_Recorder,), {"lock": threading.Lock(), "starts": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def _settings(interval: float) -> ClientSettings:
    return spec_with(client_settings, allow_private_networks=True, retries=0, connect_timeout_s=5, read_timeout_s=10,
                          total_timeout_s=30, pool_size=16, min_interval_s=interval)


def _pairs(base: str, n: int, missing: int = 0) -> list:
    pairs = [AltPair(key=f"k{i:03d}", page_url=base + "/", image_url=f"{base}/img/{i}.jpg", caption="a cat")
             for i in range(n)]
    return pairs + [AltPair(key=f"m{i:03d}", page_url=base + "/", image_url=f"{base}/missing/{i}.jpg",
                            caption="a dog") for i in range(missing)]


def _run_fetch(pairs, settings, options=None, **fetch_args) -> None:
    p = local_test_pipeline() if options is None else _TestPipeline(runner=make_runner(options), options=options)
    resize = fetch_args.pop("resize", None)
    images, rejected = p | beam.Create(pairs) | FetchImages(settings, spec_with(fetch_spec, **fetch_args), resize=resize)
    n_ok = sum(1 for pair in pairs if "/img/" in pair.image_url)
    assert_that(images | "Count" >> beam.combiners.Count.Globally(), equal_to([n_ok]), label="images")
    assert_that(rejected | "CountRejected" >> beam.combiners.Count.Globally(), equal_to([len(pairs) - n_ok]),
                label="rejected")
    p.run().wait_until_finish()


def _min_gap(starts: list) -> float:
    starts = sorted(starts)
    return min(b - a for a, b in zip(starts, starts[1:]))


def test_a_split_host_keeps_its_concurrency_and_the_keys_run_at_once(recorder):
    """3 keys of one host, per_host_concurrency 3: each key runs 1 at a time, all 3 at once."""
    base, server = recorder
    server.delay_s = 0.1
    _run_fetch(_pairs(base, 36), _settings(0.0), concurrency=8, per_host=3, urls_per_key=5)
    assert len(server.starts) == 36
    # Never more than the host's concurrency (each key given the whole 3 would reach 8)...
    assert server.peak <= 3
    # ...and all of it used: keys of one worker run at once (a process() that waited for its
    # key's items to start would run about 1 at a time, 2 at a key change).
    assert server.peak == 3


def test_a_split_host_keeps_its_request_spacing(recorder):
    """4 keys of one host, min interval 80 ms: no two request starts closer than that."""
    base, server = recorder
    interval = 0.08
    server.delay_s = 0.01
    _run_fetch(_pairs(base, 20), _settings(interval), concurrency=8, per_host=4, urls_per_key=3)
    assert len(server.starts) == 20
    assert _min_gap(server.starts) >= interval - ARRIVAL_JITTER_S


def test_two_worker_processes_keep_the_host_limits(recorder):
    """The same limits with the keys on 2 worker processes that never talk to each other."""
    base, server = recorder
    interval = 0.06
    server.delay_s = 0.1
    options = PipelineOptions(["--direct_running_mode=multi_processing", "--direct_num_workers=2"])
    began = time.monotonic()
    _run_fetch(_pairs(base, 32, missing=2), _settings(interval), options=options,
               concurrency=4, per_host=4, urls_per_key=4)
    assert len(server.starts) == 34 and time.monotonic() - began < 60
    assert server.peak <= 4
    assert _min_gap(server.starts) >= interval - ARRIVAL_JITTER_S
    assert start_window(interval) < interval


_CAPTURED: dict = {}


class _capture:  # noqa: N801  (a matcher; a class so that pickling keeps it pointing at _CAPTURED)
    def __init__(self, name):
        self.name = name

    def __call__(self, actual):
        _CAPTURED[self.name] = sorted(repr(x) for x in actual)


def test_the_split_changes_no_output_byte(recorder):
    base, server = recorder
    pairs = _pairs(base, 24, missing=3)
    spec = spec_with(resize_spec, image_size=16)
    for name, urls_per_key in (("whole", 1000), ("split", 5)):
        p = local_test_pipeline()
        images, rejected = p | f"Create{name}" >> beam.Create(pairs) | f"Fetch{name}" >> FetchImages(
            _settings(0.0), spec_with(fetch_spec, concurrency=8, per_host=4, urls_per_key=urls_per_key), resize=spec)
        assert_that(images, _capture(name + ".images"), label="images")
        assert_that(rejected, _capture(name + ".rejected"), label="rejected")
        p.run().wait_until_finish()
    assert len(_CAPTURED["whole.images"]) == 24 and len(_CAPTURED["whole.rejected"]) == 3
    assert _CAPTURED["split.images"] == _CAPTURED["whole.images"]
    assert _CAPTURED["split.rejected"] == _CAPTURED["whole.rejected"]
