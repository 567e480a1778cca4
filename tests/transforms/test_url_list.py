"""transforms.url_list: every img2dataset list format round-trips, bad rows get a reason."""

import gzip
import json

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.util import assert_that, equal_to

from pipeline.records import AltPair, Rejection
from tests.conftest import counter, local_test_pipeline
from transforms.url_list import ReadUrlList, UrlListError, list_format, read_list_file

ROWS = [
    {"url": "http://a.test/1.jpg", "caption": "a red circle on blue", "license": "cc-by"},
    {"url": "https://b.test/2.png", "caption": "two  green squares", "license": "cc0"},
    {"url": "ftp://c.test/3.jpg", "caption": "not http", "license": None},
]


def _write(tmp_path, fmt: str, gz: bool = False):
    name = f"list.{fmt}" + (".gz" if gz else "")
    if fmt == "parquet":
        buf = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pylist(ROWS), buf)
        data = buf.getvalue().to_pybytes()
    elif fmt in ("csv", "tsv"):
        sep = "," if fmt == "csv" else "\t"
        lines = [sep.join(["url", "caption", "license"])] + [
            sep.join([r["url"], r["caption"], r["license"] or ""]) for r in ROWS]
        data = ("\n".join(lines) + "\n").encode()
    elif fmt == "json":
        data = json.dumps(ROWS).encode()
    elif fmt == "jsonl":
        data = "\n".join(json.dumps(r) for r in ROWS).encode()
    else:
        data = "\n".join(r["url"] for r in ROWS).encode()
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if gz else data)
    return str(path)


@pytest.mark.parametrize("fmt", ["parquet", "csv", "tsv", "json", "jsonl", "txt"])
@pytest.mark.parametrize("gz", [False, True])
def test_formats_round_trip(tmp_path, fmt, gz):
    out = list(read_list_file(_write(tmp_path, fmt, gz), "url", "caption"))
    pairs = [o for o in out if isinstance(o, AltPair)]
    rejected = [o for o in out if isinstance(o, Rejection)]
    assert [p.image_url for p in pairs] == ["http://a.test/1.jpg", "https://b.test/2.png"]
    assert [r.reason for r in rejected] == ["extract.bad_url"]
    if fmt != "txt":
        assert [p.caption for p in pairs] == ["a red circle on blue", "two green squares"]
        assert dict(pairs[0].extra)["license"] == "cc-by"
    keys = [o.key for o in out]
    assert len(set(keys)) == 3 and keys == [o.key for o in read_list_file(_write(tmp_path, fmt, gz), "url", "caption")]


def test_column_names_are_configurable(tmp_path):
    path = tmp_path / "l.jsonl"
    path.write_text(json.dumps({"URL": "http://a.test/x.jpg", "TEXT": "a b c d"}) + "\n")
    (pair,) = read_list_file(str(path), "URL", "TEXT")
    assert (pair.image_url, pair.caption) == ("http://a.test/x.jpg", "a b c d")
    with pytest.raises(UrlListError, match="no column 'url'"):
        list(read_list_file(str(path), "url", "caption"))


@pytest.mark.parametrize("name", ["list.xlsx", "list", "list.gz"])
def test_unknown_format_is_a_clear_error(name):
    with pytest.raises(UrlListError, match="unknown URL list format"):
        list_format(name)


def test_read_url_list_pipeline(tmp_path):
    _write(tmp_path, "csv")
    _write(tmp_path, "jsonl")
    p = local_test_pipeline()
    pairs, rejected = p | ReadUrlList(str(tmp_path / "list.*"))
    assert_that(pairs | "Urls" >> beam.Map(lambda a: a.image_url),
                equal_to(["http://a.test/1.jpg", "https://b.test/2.png"] * 2), label="pairs")
    assert_that(rejected | "Reasons" >> beam.Map(lambda r: r.reason), equal_to(["extract.bad_url"] * 2),
                label="rejected")
    result = p.run()
    result.wait_until_finish()
    assert counter(result, "pairs_extracted") == 6 and counter(result, "extract.bad_url") == 2
