import json
import tarfile

import apache_beam as beam

from pipeline import shard_format
from pipeline.records import AltPair, DropReason, Rejection, ResizedImage, ScoredImage, make_key
from tests.conftest import local_test_pipeline
from transforms.write_shards import WriteRejections, WriteShards, bucket_of
from transforms.write_stats import build_stats


def _scored(i):
    key = make_key("http://s/p", i)
    pair = AltPair(key=key, page_url="http://s/p", image_url=f"http://s/{i}.jpg", caption=f"caption number {i}",
                   position=i)
    image = ResizedImage(pair=pair, data=b"\xff\xd8\xff" + bytes([i]), ext="jpg", width=8, height=8,
                         original_width=16, original_height=16, sha256=f"{i:064x}")
    return ScoredImage(image=image, clip_score=0.5, clip_model="m")


def _run(tmp_path, n=25, per_shard=10):
    samples = [_scored(i) for i in range(n)]
    rejections = [Rejection.of(s.image.pair, DropReason.FETCH_TIMEOUT, "slow") for s in samples[:3]]
    with local_test_pipeline() as p:
        _ = p | "S" >> beam.Create(samples) | WriteShards(str(tmp_path), per_shard)
        _ = p | "R" >> beam.Create(rejections) | WriteRejections(str(tmp_path), 2)
    return samples


def test_shards_sizes_and_parquet_agree(tmp_path):
    samples = _run(tmp_path)
    shards = tmp_path / "shards"
    sizes = shard_format.read_sizes(str(shards))
    assert len(sizes) == 3 and sum(sizes.values()) == len(samples)
    keys = []
    for tar_path in shard_format.list_tars(str(shards)):
        with tarfile.open(tar_path) as tar:
            members = tar.getmembers()
            names = [m.name for m in members]
            assert all(m.mtime == shard_format.TAR_MTIME for m in members)
            meta = json.loads(tar.extractfile(names[2]).read())
            assert meta["clip_score"] == 0.5 and meta["key"] == names[0].split(".")[0]
        stems = [n.split(".")[0] for n in names[::3]]
        assert stems == sorted(stems) and len(names) == 3 * sizes[tar_path.rsplit("/", 1)[1]]
        keys += stems
    table = shard_format.read_samples_table(str(shards))
    assert sorted(table.column("key").to_pylist()) == sorted(keys) == sorted(s.image.pair.key for s in samples)
    assert set(shard_format.SAMPLE_SCHEMA.names) <= set(table.schema.names)
    rej = shard_format.read_rejections_table(str(tmp_path))
    assert rej.num_rows == 3 and set(rej.column("reason").to_pylist()) == {"fetch.timeout"}
    assert not list(tmp_path.rglob("*.tmp-*"))


def test_rerun_is_byte_identical(tmp_path):
    _run(tmp_path / "a")
    _run(tmp_path / "b")
    for f in sorted((tmp_path / "a" / "shards").iterdir()):
        assert f.read_bytes() == (tmp_path / "b" / "shards" / f.name).read_bytes()


def test_bucket_of_is_stable_and_in_range():
    assert bucket_of("ff", 25, 10) == int("ff", 16) % 3
    assert bucket_of("ff", 0, 10) == 0


def test_build_stats_funnel_and_accounting():
    counted = [(("pairs",), 10), (("kept",), 6), (("drop", "CaptionRules", "caption.empty"), 3),
               (("drop", "FetchImages", "fetch.http_4xx"), 1), (("page_ok",), 2), (("page_fail", "crawl.http_4xx"), 1)]
    stats = build_stats(counted, ["ExtractAltText", "CaptionRules", "FetchImages"], {"config_hash": "x"})
    assert stats["accounting_ok"] and stats["rejected"] == 4
    assert [r["out"] for r in stats["funnel"]] == [10, 7, 6]
    assert stats["pages"] == {"fetched": 2, "failed": 1, "failed_by_reason": {"crawl.http_4xx": 1}}
    broken = build_stats([(("pairs",), 10), (("kept",), 6)], [], {})
    assert not broken["accounting_ok"]


def test_exif_goes_to_the_parquet_column_and_the_json(tmp_path):
    """img2dataset's exif text: in the parquet's exif column and the json; no exif: null / absent."""
    from dataclasses import replace

    from transforms.output_files import pack
    from transforms.write_shards import _WriteShardFn

    with_exif, without = _scored(1), _scored(2)
    with_exif = replace(with_exif, image=replace(with_exif.image, exif='{"Image Make": "Canon"}'),
                        image_embedding=b"\x00\x3c", text_embedding=b"\x00\x3c")
    fn = _WriteShardFn(str(tmp_path))
    assert list(fn.process((0, [pack(without), pack(with_exif)]))) == [("00000.tar", 2)]
    table = shard_format.read_samples_table(str(tmp_path))
    exif = dict(zip(table.column("key").to_pylist(), table.column("exif").to_pylist()))
    assert exif == {with_exif.image.pair.key: '{"Image Make": "Canon"}', without.image.pair.key: None}
    with tarfile.open(tmp_path / "00000.tar") as tar:
        metas = {m.name.split(".")[0]: json.loads(tar.extractfile(m).read()) for m in tar.getmembers()
                 if m.name.endswith(".json")}
    assert metas[with_exif.image.pair.key]["exif"] == '{"Image Make": "Canon"}'
    assert "exif" not in metas[without.image.pair.key]
