"""Our resizer against img2dataset's own, on the same inputs: same sizes, close pixels."""

import io
import os

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
resizer_mod = pytest.importorskip("img2dataset.resizer")

from pipeline.specs import resize_spec
from tests.default_specs import spec_with
from bench.common import photo_like  # noqa: E402
from transforms.resize import resize_image  # noqa: E402

SIZES = [(640, 480), (300, 900), (1200, 1100), (200, 120)]


def _inputs():
    rng = np.random.default_rng(3)
    out = []
    for w, h in SIZES:
        buf = io.BytesIO()
        photo_like(rng, w, h).save(buf, format="JPEG", quality=92)
        out.append(buf.getvalue())
    return out


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@pytest.mark.parametrize("mode", ["border", "keep_ratio", "keep_ratio_largest", "center_crop", "no"])
def test_same_dimensions_and_close_pixels(mode):
    theirs = resizer_mod.Resizer(image_size=128, resize_mode=mode, resize_only_if_bigger=False, encode_quality=95)
    for data in _inputs():
        img_bytes, width, height, ow, oh, err = theirs(io.BytesIO(data))
        assert err is None
        ours = resize_image(data, spec_with(resize_spec, image_size=128, mode=mode, encode_quality=95))
        assert (ours.width, ours.height, ours.original_width, ours.original_height) == (width, height, ow, oh)
        a = np.asarray(Image.open(io.BytesIO(ours.data)).convert("RGB"))
        b = np.asarray(Image.open(io.BytesIO(img_bytes)).convert("RGB"))
        assert _psnr(a, b) > 28, f"{mode} {ow}x{oh}: PSNR {_psnr(a, b):.1f} dB"


# -- EXIF: img2dataset's parquet ``exif`` column, from its own run on the same files ----------


def _exif_images() -> dict[str, bytes]:
    """JPEG/PNG/WebP with EXIF (strings, rationals, orientation, sub-IFD, bytes), and without."""
    out = {}
    rng = np.random.default_rng(5)
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0132] = "Canon", "EOS 5D", "2024:01:02 03:04:05"
    exif[0x0112], exif[0x011A], exif[0x0128] = 6, (72, 1), 2  # Orientation, XResolution, ResolutionUnit
    sub = exif.get_ifd(0x8769)
    sub[0x829A], sub[0x829D], sub[0x8827], sub[0x9000] = (1, 60), (28, 10), 400, b"0230"
    for fmt, ext in (("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp")):
        buf = io.BytesIO()
        photo_like(rng, 120, 80).save(buf, format=fmt, exif=exif.tobytes())
        out[f"exif.{ext}"] = buf.getvalue()
    plain = io.BytesIO()
    photo_like(rng, 90, 60).save(plain, format="JPEG")
    out["plain.jpg"] = plain.getvalue()
    desc = Image.Exif()
    desc[0x010E] = "caption " * 20  # ImageDescription
    buf = io.BytesIO()
    photo_like(rng, 60, 60).save(buf, format="JPEG", exif=desc.tobytes())
    out["desc.jpg"] = buf.getvalue()
    return out


@pytest.mark.slow  # a real img2dataset run (spawned process): ~10 s idle, ~2 min on a loaded 2-core machine
def test_exif_matches_img2dataset_parquet(tmp_path):
    import threading
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    import pyarrow as pa
    import pyarrow.parquet as pq

    img2dataset = pytest.importorskip("img2dataset")
    images = _exif_images()
    site = tmp_path / "site"
    site.mkdir()
    for name, data in images.items():
        (site / name).write_bytes(data)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        urls = tmp_path / "urls.parquet"
        pq.write_table(pa.table({"url": [base + n for n in images], "name": list(images)}), urls)
        os.environ.setdefault("WANDB_MODE", "disabled")
        img2dataset.download(url_list=str(urls), input_format="parquet", url_col="url", save_additional_columns=["name"],
                             output_folder=str(tmp_path / "out"), output_format="files", image_size=64,
                             processes_count=1, thread_count=2, distributor="multiprocessing", enable_wandb=False,
                             timeout=10)
    finally:
        server.shutdown()
        server.server_close()
    theirs = {}
    for part in (tmp_path / "out").glob("*.parquet"):
        table = pq.read_table(part).to_pydict()
        theirs.update({n: e for n, e, s in zip(table["name"], table["exif"], table["status"]) if s == "success"})
    assert set(theirs) == set(images)
    for name, data in images.items():
        ours = resize_image(data, spec_with(resize_spec, image_size=64)).exif
        assert ours == theirs[name], name
    assert theirs["plain.jpg"] == "{}" and '"Image Make": "Canon"' in theirs["exif.jpg"]
