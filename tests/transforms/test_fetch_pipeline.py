"""FetchImages in a TestPipeline against a scripted loopback server: outputs and counters."""

import io

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to
from PIL import Image

from pipeline.metrics import Counter
from pipeline.records import AltPair, DropReason
from pipeline.specs import client_settings, fetch_spec, resize_spec
from tests.conftest import counter as _counter, local_test_pipeline
from tests.default_specs import spec_with
from transforms.fetch import FetchImages

SETTINGS = spec_with(client_settings, allow_private_networks=True, retries=0, connect_timeout_s=2, read_timeout_s=2,
                          total_timeout_s=5, pool_size=4)


def _image(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 30)).save(buf, format=fmt)
    return buf.getvalue()




def test_fetch_images_pipeline(scripted_server):
    base, routes, hits = scripted_server
    jpeg, png = _image("JPEG"), _image("PNG")
    routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n")
    routes["/ok.jpg"] = (200, {"Content-Type": "image/jpeg"}, jpeg)
    routes["/ok.png"] = (200, {"Content-Type": "application/octet-stream"}, png)  # sniffed, not trusted
    routes["/moved.jpg"] = (302, {"Location": "/ok.jpg"}, b"")
    routes["/gone.jpg"] = (410, {}, b"gone")
    routes["/err.jpg"] = (500, {}, b"oops")
    routes["/noai.jpg"] = (200, {"Content-Type": "image/jpeg", "X-Robots-Tag": "noai"}, jpeg)
    routes["/private/p.jpg"] = (200, {"Content-Type": "image/jpeg"}, jpeg)
    routes["/page.jpg"] = (200, {"Content-Type": "image/jpeg"}, b"<html>sorry</html>")
    paths = {"ok": "/ok.jpg", "okpng": "/ok.png", "moved": "/moved.jpg", "missing": "/missing.jpg",
             "gone": "/gone.jpg", "err": "/err.jpg", "noai": "/noai.jpg", "robots": "/private/p.jpg",
             "html": "/page.jpg"}
    pairs = [AltPair(key=k, page_url=base + "/", image_url=base + path, caption="a b c d")
             for k, path in paths.items()]

    p = local_test_pipeline()
    fetched, rejected = p | beam.Create(pairs) | FetchImages(SETTINGS, spec_with(fetch_spec, concurrency=4))
    assert_that(fetched | "Fetched" >> beam.Map(lambda f: (f.pair.key, f.mime, f.final_url.removeprefix(base),
                                                           len(f.data))),
                equal_to([("ok", "image/jpeg", "/ok.jpg", len(jpeg)), ("okpng", "image/png", "/ok.png", len(png)),
                          ("moved", "image/jpeg", "/ok.jpg", len(jpeg))]), label="fetched")
    expected_rejections = {"missing": "fetch.http_4xx", "gone": "fetch.http_4xx", "err": "fetch.http_5xx",
                           "noai": "fetch.noai", "robots": "fetch.robots_disallowed", "html": "fetch.not_image"}
    assert_that(rejected | "Rejected" >> beam.Map(lambda r: (r.key, r.stage, r.reason)),
                equal_to([(k, "fetch", v) for k, v in expected_rejections.items()]), label="rejected")
    result = p.run()
    result.wait_until_finish()

    assert _counter(result, Counter.IMAGES_FETCHED.value) == 3
    for reason, n in {DropReason.FETCH_HTTP_4XX: 2, DropReason.FETCH_HTTP_5XX: 1, DropReason.FETCH_NOAI: 1,
                      DropReason.FETCH_ROBOTS: 1, DropReason.FETCH_NOT_IMAGE: 1}.items():
        assert _counter(result, reason.value) == n, reason
    assert "/private/p.jpg" not in hits  # robots.txt refused it before any request


def test_resize_in_worker_processes_matches_resize_in_threads(scripted_server):
    from transforms.fetch import _image_pool, fetch_and_resize
    from transforms.http_client import HttpClient

    base, routes, _hits = scripted_server
    routes["/a.jpg"] = (200, {"Content-Type": "image/jpeg"}, _image("JPEG"))
    routes["/b.png"] = (200, {"Content-Type": "image/png"}, _image("PNG"))
    routes["/cut.jpg"] = (200, {"Content-Type": "image/jpeg"}, _image("JPEG")[:200])  # truncated
    pairs = [AltPair(key=k, page_url=base + "/", image_url=base + p, caption="a b c d")
             for k, p in (("a", "/a.jpg"), ("b", "/b.png"), ("cut", "/cut.jpg"))]
    spec = spec_with(resize_spec, image_size=32, mode="border")
    client, pool = HttpClient(SETTINGS), _image_pool(2)
    try:
        in_threads = [fetch_and_resize(client, spec, pair) for pair in pairs]
        in_processes = [fetch_and_resize(client, spec, pair, pool) for pair in pairs]
    finally:
        pool.shutdown()
        client.close()
    # Same record (bytes, sizes, hashes) whichever side of the process boundary resized
    # it; the truncated JPEG's DecodeError crosses it as image.undecodable.
    assert in_processes == in_threads
    assert [type(r).__name__ for r in in_processes] == ["ResizedImage", "ResizedImage", "Rejection"]
    assert in_processes[2].reason == DropReason.IMAGE_UNDECODABLE.value
    assert _image_pool(0) is None

    p = local_test_pipeline()
    images, rejected = p | beam.Create(pairs) | FetchImages(SETTINGS, spec_with(fetch_spec, concurrency=4, processes=2), resize=spec)
    assert_that(images | beam.Map(lambda im: (im.pair.key, im.width, len(im.phash))),
                equal_to([("a", 32, 16), ("b", 32, 16)]), label="resized")
    assert_that(rejected | beam.Map(lambda r: (r.key, r.reason)), equal_to([("cut", "image.undecodable")]),
                label="undecodable")
    p.run().wait_until_finish()


def test_decode_slots_cap_how_many_threads_resize_at_once(monkeypatch):
    import threading
    import time

    from pipeline.records import FetchedImage
    from transforms import fetch

    lock, running, most = threading.Lock(), [0], [0]

    def fake_resize(fetched, spec, pool=None):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return fetched

    pair = AltPair(key="k", page_url="", image_url="http://h/x.jpg", caption="c")
    monkeypatch.setattr(fetch, "fetch_image", lambda client, p, svg: FetchedImage(p, b"x", p.image_url, "image/jpeg"))
    monkeypatch.setattr(fetch, "resize_fetched", fake_resize)
    slots = threading.BoundedSemaphore(2)
    threads = [threading.Thread(target=fetch.fetch_and_resize, args=(None, spec_with(resize_spec), pair, None, slots))
               for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 2  # twelve downloads done at once, never more than two decodes
    assert fetch.decode_slots() >= 1
