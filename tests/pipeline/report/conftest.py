"""Shared fixtures for the report tests: a real curated output of a small sample web, and an
img2dataset-layout folder written with the output-contract helpers."""

import json

import pytest

from pipeline import shard_format
from pipeline.build import Inputs
from pipeline.config import CONFIG_DIR, load_config
from pipeline.run import run_curation
from pipeline.sample import SampleServer, generate_site

SCORER = CONFIG_DIR.parent / "models" / "wit-tiny-scorer.pt"


@pytest.fixture(scope="session")
def curated(tmp_path_factory):
    """A ``wit curate`` output of a 3-page sample web, scored by the bundled scorer."""
    if not SCORER.exists():
        pytest.fail(f"bundled scorer missing: {SCORER} (make sample-model)")
    root = tmp_path_factory.mktemp("report_run")
    cfg = load_config([CONFIG_DIR / "sample.yaml"], ["fetch.allow_private_networks=true"])
    with SampleServer(generate_site(seed=0, n_pages=3)) as server:
        seeds = root / "seeds.txt"
        seeds.write_text("\n".join(server.seed_urls) + "\n")
        run_curation(cfg, Inputs(seeds_file=str(seeds)), str(root / "out"))
    return root / "out"


def _jpeg(color) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture
def img2dataset_dir(tmp_path):
    """img2dataset's webdataset layout: NNNNN.tar + NNNNN.parquet (all rows, with status) + NNNNN_stats.json."""
    rows = [
        {"key": "000000000", "url": "http://a.test/1.jpg", "caption": "a red square", "status": "success",
         "error_message": None, "width": 40, "height": 30, "original_width": 400, "original_height": 300,
         "exif": "{}", "sha256": "s1"},
        {"key": "000000001", "url": "http://a.test/2.jpg", "caption": "the same red square", "status": "success",
         "error_message": None, "width": 40, "height": 30, "original_width": 400, "original_height": 300,
         "exif": "{}", "sha256": "s1"},
        {"key": "000000002", "url": "http://a.test/3.jpg", "caption": "gone", "status": "failed_to_download",
         "error_message": "HTTP Error 404: Not Found", "width": None, "height": None,
         "original_width": None, "original_height": None, "exif": None, "sha256": None},
        {"key": "000000003", "url": "http://a.test/4.jpg", "caption": "broken", "status": "failed_to_resize",
         "error_message": "Image decoding error", "width": None, "height": None,
         "original_width": None, "original_height": None, "exif": None, "sha256": None},
    ]
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "00000.parquet")
    samples = [{"key": r["key"], "ext": "jpg", "image": _jpeg("red"), "caption": r["caption"], "meta": r}
               for r in rows if r["status"] == "success"]
    (tmp_path / "00000.tar").write_bytes(shard_format.tar_bytes(samples))
    (tmp_path / "00000_stats.json").write_text(json.dumps(
        {"count": 4, "successes": 2, "failed_to_download": 1, "failed_to_resize": 1,
         "status_dict": {"success": 2, "HTTP Error 404: Not Found": 1, "Image decoding error": 1}}))
    return tmp_path
