"""bench/memory.py's input and checks: distinct synthetic images per URL, and the guard that
fails the bench when the stages did not see distinct images."""

import urllib.request

import numpy as np

from pipeline.specs import resize_spec
from tests.default_specs import spec_with
from bench.common import SynthImageServer, url_jpeg
from bench.memory import SIDES, check_distinct, planned_filename_drops
from transforms.imaging import resize_image


def _stats(n: int, extra: dict) -> dict:
    by_reason = {"caption.filename": planned_filename_drops(n), **extra}
    rejected = sum(by_reason.values())
    return {"pairs_extracted": n, "kept": n - rejected, "rejected": rejected, "accounting_ok": True,
            "rejected_by_reason": by_reason}


def test_url_jpeg_is_a_pure_function_of_the_url_and_differs_per_url():
    assert url_jpeg("/img/0000007.jpg") == url_jpeg("/img/0000007.jpg")
    assert url_jpeg("/img/0000007.jpg") != url_jpeg("/img/0000008.jpg")


def test_no_two_of_300_urls_are_near_duplicates_after_the_pipelines_resize():
    # DedupeNear's test: pHash within 8 bits and every colour-signature byte within 20, at the
    # bench's image sides.
    spec = spec_with(resize_spec, image_size=128, mode="border")
    results = [resize_image(url_jpeg(f"/img/{i:07d}.jpg", SIDES), spec) for i in range(300)]
    hashes = np.array([int(r.phash, 16) for r in results], dtype=np.uint64)
    colours = np.array([list(bytes.fromhex(r.colour_sig)) for r in results], dtype=np.int16)
    lo, hi = SIDES
    assert all(lo <= r.original_width <= hi and lo <= r.original_height <= hi for r in results)
    xor = hashes[:, None] ^ hashes[None, :]
    dist = np.unpackbits(xor.view(np.uint8).reshape(xor.shape + (8,)), axis=-1).sum(-1)
    colour_close = np.abs(colours[:, None, :] - colours[None, :, :]).max(-1) <= 20
    near = (dist <= 8) & colour_close
    np.fill_diagonal(near, False)
    assert not near.any()


def test_synth_server_serves_each_url_its_own_image_and_404_elsewhere():
    with SynthImageServer() as server:
        body = urllib.request.urlopen(f"{server.base_url}/img/0000003.jpg", timeout=10).read()
        assert body == url_jpeg("/img/0000003.jpg")
        try:
            urllib.request.urlopen(f"{server.base_url}/robots.txt", timeout=10)
            raise AssertionError("robots.txt should be 404")
        except urllib.error.HTTPError as exc:
            assert exc.code == 404


def test_check_distinct_passes_only_the_planned_rejections():
    assert check_distinct(_stats(10_000, {}), 10_000) == []
    assert check_distinct(_stats(10_000, {"dedupe.image_near": 50}), 10_000) == []  # 0.5 %: noise
    assert check_distinct(_stats(10_000, {"dedupe.image_exact": 9000}), 10_000)
    assert check_distinct(_stats(10_000, {"dedupe.image_near": 200}), 10_000)
    assert check_distinct(_stats(10_000, {"fetch.timeout": 500}), 10_000)
    broken = dict(_stats(10_000, {}), accounting_ok=False)
    assert check_distinct(broken, 10_000)
    missing = dict(_stats(10_000, {}), rejected_by_reason={})
    assert check_distinct(missing, 10_000)
