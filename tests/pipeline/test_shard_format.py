"""pipeline/shard_format.py: the webdataset tar bytes, against tarfile's own writer."""

import io
import json
import os
import random
import tarfile

import pytest

from pipeline import shard_format


def _samples(n: int) -> list:
    rng = random.Random(n)
    return [{"key": f"{rng.getrandbits(80):020x}", "ext": "jpg", "image": os.urandom(rng.randrange(0, 3000)),
             "caption": "ünïcode caption " * rng.randrange(0, 40),
             "meta": {"key": "x", "width": rng.randrange(1, 9999), "caption": "é"}} for _ in range(n)]


def _tarfile_reference(samples) -> bytes:
    """What tarfile.addfile writes for the same members (the way the shards were written before)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for s in sorted(samples, key=lambda s: s["key"]):
            meta = json.dumps(s["meta"], sort_keys=True, ensure_ascii=False).encode("utf-8")
            for name, payload in ((f"{s['key']}.{s['ext']}", s["image"]),
                                  (f"{s['key']}.txt", s["caption"].encode("utf-8")),
                                  (f"{s['key']}.json", meta)):
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(payload), shard_format.TAR_MTIME, 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


@pytest.mark.parametrize("n", [0, 1, 7, 120])
def test_tar_bytes_equal_tarfiles_own_output(n):
    samples = _samples(n)
    ours = shard_format.tar_bytes(samples)
    assert ours == _tarfile_reference(samples)
    assert len(ours) % tarfile.RECORDSIZE == 0
    with tarfile.open(fileobj=io.BytesIO(ours)) as tar:
        names = tar.getnames()
    assert len(names) == 3 * n and names == sorted(names, key=lambda m: m.split(".")[0])


def test_tar_bytes_refuse_keys_webdataset_would_split():
    with pytest.raises(ValueError, match="must not contain"):
        shard_format.tar_bytes([{"key": "a.b", "ext": "jpg", "image": b"", "caption": "", "meta": {}}])


@pytest.mark.parametrize("name,size", [("a.jpg", 0), ("0123456789abcdef0123.json", 1), ("é.txt", 511),
                                       ("k" * 96 + ".jpg", 512), ("k" * 101, 7), ("x.jpg", 8 ** 11 - 1),
                                       ("x.jpg", 8 ** 11)])
def test_member_headers_are_tarfiles_own(name, size):
    # Past ustar's plain fields (101-byte names, sizes of 8 GiB) the header comes from tarfile itself.
    if len(name.encode()) > 100 or size >= 8 ** 11:
        with pytest.raises(ValueError):
            shard_format._tarfile_header(name, size)
        return
    assert shard_format._header(name, size) == shard_format._tarfile_header(name, size)


# ---- the license column (helper B) --------------------------------------------------------------

IMG2DATASET_COLUMNS = ["key", "url", "caption", "status", "error_message", "width", "height",
                       "original_width", "original_height", "exif", "sha256"]


def test_license_column_keeps_img2datasets_columns_first():
    names = shard_format.SAMPLE_SCHEMA.names
    assert names[:len(IMG2DATASET_COLUMNS)] == IMG2DATASET_COLUMNS
    assert "license" in names and shard_format.SAMPLE_SCHEMA.field("license").type == "string"


def test_license_in_parquet_row_and_tar_json():
    import pyarrow.parquet as pq

    from pipeline.records import AltPair, ResizedImage, ScoredImage
    from transforms.write_shards import sample_row

    def scored(license_id):
        pair = AltPair(key="ab", page_url="http://p.test/", image_url="http://p.test/a.jpg", caption="a b c",
                       license=license_id)
        return ScoredImage(image=ResizedImage(pair=pair, data=b"", ext="jpg", width=1, height=1, original_width=1,
                                              original_height=1, sha256="0"))

    rows = [sample_row(scored("cc-by-sa-4.0")), sample_row(scored(""))]
    assert [r["license"] for r in rows] == ["cc-by-sa-4.0", "unknown"]  # "" (not captured) is written as unknown
    table = pq.read_table(io.BytesIO(shard_format.parquet_bytes(rows, shard_format.sample_schema(rows))))
    assert table.column("license").to_pylist() == ["cc-by-sa-4.0", "unknown"]
    tar = shard_format.tar_bytes([{"key": "ab", "ext": "jpg", "image": b"", "caption": "a b c", "meta": rows[0]}])
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        assert json.loads(t.extractfile("ab.json").read())["license"] == "cc-by-sa-4.0"
