import json
import os

import pytest

from pipeline.report.loader import (IMG2DATASET, WIT, ReportInputError, detect_layout, load_run,
                                    parse_clip_score, read_images)


@pytest.mark.parametrize("detail,expected", [
    ("0.1860 < 0.55", 0.186),
    ("-0.0222 < 0.55", -0.0222),
    ("  1e-3 < 0.5", 0.001),
    ("0.3", 0.3),
    ("no score", None),
    ("", None),
    (None, None),
])
def test_parse_clip_score(detail, expected):
    got = parse_clip_score(detail)
    assert got == pytest.approx(expected) if expected is not None else got is None


def test_wit_output(curated):
    run = load_run(str(curated))
    stats = json.loads((curated / "stats.json").read_text())
    assert run.layout == WIT and run.stats == stats
    assert run.kept.num_rows == stats["kept"] and run.dropped.num_rows == stats["rejected"]
    below = [r for r in run.dropped.to_pylist() if r["reason"] == "clip.below_threshold"]
    assert below and all(r["clip_score"] is not None and r["clip_score"] < 0.55 for r in below)
    assert all(r["clip_score"] is None for r in run.dropped.to_pylist() if r["reason"] != "clip.below_threshold")
    assert run.files["tars"] >= 1 and run.files["tar_bytes"] > 0 and run.files["rejection_files"] == 1
    # pointing at OUT/shards reads the whole run
    assert load_run(str(curated / "shards")).root == str(curated)


def test_read_images_from_the_tars(curated):
    run = load_run(str(curated))
    rows = run.kept.slice(0, 3).to_pylist()
    images = read_images(run, rows)
    assert set(images) == {r["key"] for r in rows}
    assert all(data[:2] == b"\xff\xd8" for data in images.values())  # JPEG


def test_img2dataset_layout(img2dataset_dir):
    run = load_run(str(img2dataset_dir))
    assert run.layout == IMG2DATASET
    assert run.kept.column("key").to_pylist() == ["000000000", "000000001"]
    assert run.kept.column("shard").to_pylist() == ["00000", "00000"]
    dropped = {r["key"]: (r["stage"], r["reason"]) for r in run.dropped.to_pylist()}
    assert dropped == {"000000002": ("download", "HTTP Error 404: Not Found"),
                       "000000003": ("resize", "Image decoding error")}
    assert [(s["stage"], s["in"], s["out"]) for s in run.stats["funnel"]] == [("download", 4, 3), ("resize", 3, 2)]
    assert run.stats["pairs_extracted"] == 4 and run.stats["accounting_ok"]
    assert set(read_images(run, run.kept.to_pylist())) == {"000000000", "000000001"}


def test_not_an_output(tmp_path):
    with pytest.raises(ReportInputError, match="neither"):
        detect_layout(str(tmp_path))
    with pytest.raises(ReportInputError, match="no such directory"):
        load_run(str(tmp_path / "missing"))


@pytest.mark.slow
def test_a_real_img2dataset_output(tmp_path):
    """img2dataset itself downloads the sample web; its folder reads back as kept + dropped."""
    img2dataset = pytest.importorskip("img2dataset")
    from pipeline.sample import SampleServer, generate_site

    site = generate_site(seed=0, n_pages=1)
    with SampleServer(site) as server:
        urls = tmp_path / "urls.json"
        base = server.base_url.rstrip("/")
        urls.write_text(json.dumps([{"url": base + e.image_path, "caption": e.alt} for e in site.manifest]))
        img2dataset.download(url_list=str(urls), input_format="json", url_col="url", caption_col="caption",
                             output_folder=str(tmp_path / "out"), output_format="webdataset",
                             processes_count=1, thread_count=4, image_size=64, timeout=5, retries=0,
                             enable_wandb=False, distributor="multiprocessing")
    out = tmp_path / "out"
    counts = [json.loads(p.read_text()) for p in out.glob("*_stats.json")]
    run = load_run(str(out))
    assert run.layout == IMG2DATASET
    assert run.kept.num_rows == sum(c["successes"] for c in counts) > 0
    assert run.dropped.num_rows == sum(c["count"] - c["successes"] for c in counts) > 0
    expected = {}
    for c in counts:
        for reason, n in c["status_dict"].items():
            if reason != "success":
                expected[reason] = expected.get(reason, 0) + n
    assert run.stats["rejected_by_reason"] == expected
    assert os.path.isdir(run.shards_dir) and len(read_images(run, run.kept.to_pylist())) == run.kept.num_rows


def test_thumbnails_are_read_only_for_the_rows_asked(curated):
    from pipeline.report.loader import read_reject_thumbnails

    run = load_run(str(curated))
    assert "thumbnail" not in run.dropped.column_names  # the table stays text: thumbnails on demand
    rows = run.dropped.to_pylist()
    after = [r["key"] for r in rows if r["reason"] in ("clip.below_threshold", "dedupe.image_near")]
    before = [r["key"] for r in rows if r["stage"] in ("caption", "fetch")]
    found = read_reject_thumbnails(run, after + before)
    assert set(found) == set(after) and all(v[:2] == b"\xff\xd8" for v in found.values())  # JPEGs
    assert read_reject_thumbnails(run, []) == {}
    assert run.info["runner"].startswith("FnApiRunner") and run.info["duration_s"] > 0


def test_an_output_written_before_thumbnails_and_run_info(curated, tmp_path):
    import shutil

    import pyarrow.parquet as pq

    from pipeline.report.loader import read_reject_thumbnails

    old = tmp_path / "old"
    shutil.copytree(curated, old)
    (old / "run_info.json").unlink()
    for path in (old / "rejections").glob("*.parquet"):
        table = pq.read_table(path)
        pq.write_table(table.drop(["thumbnail"]), path)
    run = load_run(str(old))
    assert run.info == {} and run.dropped.num_rows == load_run(str(curated)).dropped.num_rows
    assert read_reject_thumbnails(run, run.dropped.column("key").to_pylist()) == {}
    from pipeline import shard_format

    both = shard_format.read_rejections_table(str(old), ["key", "thumbnail"])
    assert both.column("thumbnail").null_count == both.num_rows
