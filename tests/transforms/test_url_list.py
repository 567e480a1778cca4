"""transforms.url_list: every img2dataset list format round-trips, bad rows get a reason."""

import gzip
import json

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.util import assert_that, equal_to

from pipeline.records import AltPair, Rejection
from pipeline.specs import extract_spec
from tests.conftest import counter, local_test_pipeline
from tests.default_specs import spec_with
from transforms.url_list import ReadUrlList, UrlListError, list_format, read_list_file

URL_CHARS = spec_with(extract_spec).max_url_chars  # extract.max_url_chars of the default config

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
    out = list(read_list_file(_write(tmp_path, fmt, gz), "url", "caption", max_url_chars=URL_CHARS))
    pairs = [o for o in out if isinstance(o, AltPair)]
    rejected = [o for o in out if isinstance(o, Rejection)]
    assert [p.image_url for p in pairs] == ["http://a.test/1.jpg", "https://b.test/2.png"]
    assert [r.reason for r in rejected] == ["extract.bad_url"]
    if fmt != "txt":
        assert [p.caption for p in pairs] == ["a red circle on blue", "two green squares"]
        assert dict(pairs[0].extra)["license"] == "cc-by"
    keys = [o.key for o in out]
    again = read_list_file(_write(tmp_path, fmt, gz), "url", "caption", max_url_chars=URL_CHARS)
    assert len(set(keys)) == 3 and keys == [o.key for o in again]


def test_column_names_are_configurable(tmp_path):
    path = tmp_path / "l.jsonl"
    path.write_text(json.dumps({"URL": "http://a.test/x.jpg", "TEXT": "a b c d"}) + "\n")
    (pair,) = read_list_file(str(path), "URL", "TEXT", max_url_chars=URL_CHARS)
    assert (pair.image_url, pair.caption) == ("http://a.test/x.jpg", "a b c d")
    # each JSON record is its own row
    (rejected,) = read_list_file(str(path), "url", "caption", max_url_chars=URL_CHARS)
    assert rejected.reason == "extract.bad_url" and "no 'url' field (fields: URL, TEXT)" in rejected.detail
    csv = tmp_path / "l.csv"
    csv.write_text("URL,TEXT\nhttp://a.test/x.jpg,a b c d\n")
    # a table without the column: the file
    (rejected,) = read_list_file(str(csv), "url", "caption", max_url_chars=URL_CHARS)
    assert rejected.reason == "extract.unreadable_file" and "no column 'url' (columns: URL, TEXT)" in rejected.detail


@pytest.mark.parametrize("name", ["list.xlsx", "list", "list.gz"])
def test_unknown_format_is_a_clear_error(name):
    with pytest.raises(UrlListError, match="unknown URL list format"):
        list_format(name)


def test_read_url_list_pipeline(tmp_path):
    _write(tmp_path, "csv")
    _write(tmp_path, "jsonl")
    p = local_test_pipeline()
    pairs, rejected = p | ReadUrlList(str(tmp_path / "list.*"), max_url_chars=URL_CHARS)
    assert_that(pairs | "Urls" >> beam.Map(lambda a: a.image_url),
                equal_to(["http://a.test/1.jpg", "https://b.test/2.png"] * 2), label="pairs")
    assert_that(rejected | "Reasons" >> beam.Map(lambda r: r.reason), equal_to(["extract.bad_url"] * 2),
                label="rejected")
    result = p.run()
    result.wait_until_finish()
    assert counter(result, "pairs_extracted") == 6 and counter(result, "extract.bad_url") == 2


# ---- input integrity (issue 14): encoding policy, malformed rows and files, keys, URL limits ----

import codecs  # noqa: E402

from pipeline.records import DropReason  # noqa: E402
from transforms import list_rows, url_list  # noqa: E402
from transforms.url_guard import MAX_URL_CHARS  # noqa: E402

BAD_URL, BAD_ENCODING = DropReason.EXTRACT_BAD_URL.value, DropReason.EXTRACT_BAD_ENCODING.value
BAD_ROW, UNREADABLE = DropReason.EXTRACT_BAD_ROW.value, DropReason.EXTRACT_UNREADABLE_FILE.value


def _read(tmp_path, name: str, data: bytes, **kw):
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    out = list(read_list_file(str(path), "url", "caption", **{"max_url_chars": URL_CHARS, **kw}))
    return ([o for o in out if isinstance(o, AltPair)], [o for o in out if isinstance(o, Rejection)])


@pytest.mark.parametrize("fmt,sep", [("csv", b","), ("tsv", b"\t")])
def test_one_latin1_byte_in_a_caption_costs_only_that_caption(tmp_path, fmt, sep):
    rows = [b"url" + sep + b"caption" + sep + b"note",
            b"http://a.test/1.jpg" + sep + b"caf\xe9 au lait" + sep + b"na\xefve",
            b"http://a.test/2.jpg" + sep + b"plain words" + sep + b"ok"]
    pairs, rejected = _read(tmp_path, f"l.{fmt}", b"\n".join(rows) + b"\n")
    assert rejected == []
    assert [p.caption for p in pairs] == ["caf\ufffd au lait", "plain words"]  # never "b'...'"
    assert [dict(p.extra)["note"] for p in pairs] == ["na\ufffdve", "ok"]


def test_one_latin1_byte_in_a_url_rejects_only_that_row(tmp_path):
    data = b"url,caption\nhttp://a.test/caf\xe9.jpg,one\nhttp://a.test/2.jpg,two\nhttp://a.test/3.jpg,three\n"
    pairs, rejected = _read(tmp_path, "l.csv", data)
    assert [p.image_url for p in pairs] == ["http://a.test/2.jpg", "http://a.test/3.jpg"]
    assert [(r.reason, r.caption) for r in rejected] == [(BAD_ENCODING, "one")]
    assert "not valid UTF-8 (byte 17)" in rejected[0].detail and "b'" not in rejected[0].image_url


@pytest.mark.parametrize("bom,encoding", [(codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                                          (codecs.BOM_UTF16_BE, "utf-16-be")])
@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "txt"])
def test_a_bom_is_stripped_and_utf16_read(tmp_path, bom, encoding, fmt):
    text = {"csv": "url,caption\nhttp://a.test/é.jpg,crème\n", "tsv": "url\tcaption\nhttp://a.test/é.jpg\tcrème\n",
            "jsonl": '{"url": "http://a.test/é.jpg", "caption": "crème"}\n', "txt": "http://a.test/é.jpg\n"}[fmt]
    pairs, rejected = _read(tmp_path, f"l.{fmt}", bom + text.encode(encoding))
    assert rejected == [] and [p.image_url for p in pairs] == ["http://a.test/é.jpg"]
    if fmt != "txt":
        assert pairs[0].caption == "crème"


def test_json_lists_that_are_not_arrays_of_objects(tmp_path):
    data = b'[{"url": "http://a.test/1.jpg", "caption": "x"}, null, 3, "http://a.test/2.jpg", [1]]'
    pairs, rejected = _read(tmp_path, "a.json", data)
    assert [p.image_url for p in pairs] == ["http://a.test/1.jpg"]
    assert [r.reason for r in rejected] == [BAD_ROW] * 4
    for rejection, what in zip(rejected, ["null", "number", "string", "array"]):
        assert f"a JSON {what}, not an object (" in rejection.detail and rejection.detail.endswith("a.json)")
    for data, detail in [(b'{"url": "http://a.test/1.jpg"}', "a JSON object, expected an array of objects"),
                         (b"null", "a JSON null"), (b'[{"url": "http://a', "cannot read as json"),
                         (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"), (b"", "cannot read as json")]:
        pairs, rejected = _read(tmp_path, "b.json", data)
        assert pairs == [] and [r.reason for r in rejected] == [UNREADABLE] and detail in rejected[0].detail
        assert rejected[0].detail.endswith("b.json)")


def test_jsonl_keeps_the_good_lines_of_a_bad_file(tmp_path):
    lines = [b'{"url": "http://a.test/1.jpg", "caption": "one"}', b"null", b'{"url": "http://a.test/2.jp',
             b"[1, 2]", b"   ", b'{"url": "http://a.test/3.jpg", "caption": "th\\u2028ree\xff"}',
             b"[" * 50_000, b'{"url": "http://a.test/\\ud800.jpg"}',
             b'{"url": "http://a.test/4.jpg", "caption": "\\udc80x"}']
    pairs, rejected = _read(tmp_path, "l.jsonl", b"\n".join(lines))
    assert [p.image_url for p in pairs] == ["http://a.test/1.jpg", "http://a.test/3.jpg", "http://a.test/4.jpg"]
    assert [p.caption for p in pairs] == ["one", "th ree\ufffd", "\ufffdx"]  # U+2028 is whitespace; bad bytes: U+FFFD
    assert [r.reason for r in rejected] == [BAD_ROW, BAD_ROW, BAD_ROW, BAD_ROW, BAD_ENCODING]
    assert "not JSON" in rejected[1].detail and "nested too deeply" in rejected[3].detail
    # the row numbers (and so the keys) count the non-blank lines, as before
    assert [p.position for p in pairs] == [0, 4, 7]
    for text in (o.caption for o in pairs + rejected):
        text.encode("utf-8")  # nothing left that cannot be written


def test_malformed_csv_lines_are_bad_rows_and_the_rest_is_kept(tmp_path):
    data = (b"url,caption\nhttp://a.test/1.jpg,one\nhttp://a.test/2.jpg,two,extra\nhttp://a.test/3.jpg\n"
            b'http://a.test/4.jpg,"four, quoted"\n')
    pairs, rejected = _read(tmp_path, "l.csv", data)
    assert [p.caption for p in pairs] == ["one", "four, quoted"]
    assert [r.reason for r in rejected] == [BAD_ROW, BAD_ROW]
    assert "line 3: 3 fields, expected 2" in rejected[0].detail
    assert len({o.key for o in pairs + rejected}) == 4


@pytest.mark.parametrize("name,data,detail", [
    ("l.csv.gz", b"\x1f\x8b\x08\x00garbage", "cannot read the file"),
    ("l.csv.gz", gzip.compress(b"url,caption\nhttp://a.test/1.jpg,x\n", mtime=0)[:25], "cannot read the file: EOFError"),
    ("l.parquet", b"PAR1 not really", "cannot read as parquet"),
    ("l.csv", b'"url,caption\n', "cannot read as csv"),
    ("l.csv", b"link,text\nhttp://a.test/1.jpg,one\n", "no column 'url' (columns: link, text)"),
    ("l.csv", b"url,url\nhttp://a.test/1.jpg,x\n", "2 columns named 'url'"),
])
def test_a_file_that_cannot_be_read_is_one_rejection(tmp_path, name, data, detail):
    path = tmp_path / name
    path.write_bytes(data)
    out = list(read_list_file(str(path), "url", "caption", max_url_chars=URL_CHARS))
    assert [o.reason for o in out] == [UNREADABLE] and detail in out[0].detail, out


def test_empty_files_give_nothing(tmp_path):
    for name in ("e.csv", "e.tsv", "e.jsonl", "e.txt"):
        assert _read(tmp_path, name, b"") == ([], [])
    assert _read(tmp_path, "e.json", b"[]") == ([], [])


def test_no_value_is_written_as_str_of_bytes(tmp_path):
    table = pa.table({"url": pa.array([b"http://a.test/1.jpg", b"http://a.test/\xff.jpg"], pa.binary()),
                      "caption": pa.array([b"caf\xc3\xa9", b"caf\xe9"], pa.binary()),
                      "tag": pa.array([b"x\xff", b"y"], pa.binary()), "n": [1, 2]})
    pq.write_table(table, str(tmp_path / "b.parquet"))
    out = list(read_list_file(str(tmp_path / "b.parquet"), "url", "caption", max_url_chars=URL_CHARS))
    assert isinstance(out[0], AltPair) and out[0].caption == "café" and dict(out[0].extra) == {"tag": "x\ufffd", "n": 1}
    assert out[1].reason == BAD_ENCODING and out[1].caption == "caf\ufffd"
    assert not any("b'" in str(v) for o in out for v in (o.image_url, o.caption))


def test_keys_come_from_the_full_path(tmp_path, monkeypatch):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "list.txt").write_text("http://a.test/1.jpg\nhttp://a.test/2.jpg\n")
    keys_a = [o.key for o in read_list_file(str(tmp_path / "a" / "list.txt"), max_url_chars=URL_CHARS)]
    keys_b = [o.key for o in read_list_file(str(tmp_path / "b" / "list.txt"), max_url_chars=URL_CHARS)]
    assert len(set(keys_a)) == 2 and not set(keys_a) & set(keys_b)
    monkeypatch.chdir(tmp_path)  # the same file named relatively: the same keys
    assert [o.key for o in read_list_file("a/list.txt", max_url_chars=URL_CHARS)] == keys_a


@pytest.mark.parametrize("url,ok", [
    ("http://a.test/" + "x" * (MAX_URL_CHARS - 14), True),
    ("http://a.test/" + "x" * (MAX_URL_CHARS - 13), False),
    ("http://[::1/x.jpg", False), ("http://[oops/x.jpg", False), ("//[x]/y.jpg", False), ("http://h:99999/x", False),
    ("http://h:abc/x", False), ("http:///x.jpg", False), ("https://[::1]:8080/x.jpg", True), ("HTTP://A.test/x", True),
])
def test_bad_and_over_long_urls_are_rejected_never_cut(tmp_path, url, ok):
    pairs, rejected = _read(tmp_path, "l.jsonl", json.dumps({"url": url, "caption": "c"}).encode())
    if ok:
        assert [p.image_url for p in pairs] == [url]
    else:
        assert pairs == [] and [r.reason for r in rejected] == [BAD_URL]
        if len(url) > MAX_URL_CHARS:
            assert f"URL of {len(url)} characters, over the {MAX_URL_CHARS} limit (not cut)" in rejected[0].detail
            assert len(rejected[0].image_url) <= 300


def test_the_url_limit_is_configurable(tmp_path):
    data = b"http://a.test/short.jpg\nhttp://a.test/" + b"x" * 100 + b".jpg\n"
    pairs, rejected = _read(tmp_path, "l.txt", data, max_url_chars=50)
    assert [p.image_url for p in pairs] == ["http://a.test/short.jpg"] and "over the 50 limit" in rejected[0].detail


def test_one_row_that_trips_a_bug_costs_that_row(tmp_path, monkeypatch):
    real = list_rows._row_result

    def flaky(source, index, url, *rest):
        if index == 1:
            raise RuntimeError("boom")
        return real(source, index, url, *rest)

    monkeypatch.setattr(list_rows, "_row_result", flaky)
    pairs, rejected = _read(tmp_path, "l.txt", b"http://a.test/0.jpg\nhttp://a.test/1.jpg\nhttp://a.test/2.jpg\n")
    assert [p.position for p in pairs] == [0, 2]
    assert [r.reason for r in rejected] == ["extract.internal_error"] and "RuntimeError: boom" in rejected[0].detail


def test_a_file_that_trips_a_bug_costs_that_file(tmp_path, monkeypatch):
    monkeypatch.setattr(url_list, "_read_bytes", lambda path: (_ for _ in ()).throw(RuntimeError("disk")))
    (tmp_path / "l.txt").write_text("http://a.test/0.jpg\n")
    out = list(read_list_file(str(tmp_path / "l.txt"), max_url_chars=URL_CHARS))
    assert [o.reason for o in out] == ["extract.internal_error"] and "RuntimeError: disk" in out[0].detail


def test_pipeline_counts_every_row_and_file(tmp_path):
    (tmp_path / "good.csv").write_bytes(b"url,caption\nhttp://a.test/1.jpg,caf\xe9\nhttp://a.test/\xe9.jpg,x\n")
    (tmp_path / "bad.json").write_bytes(b'{"not": "a list"}')
    p = local_test_pipeline()
    pairs, rejected = p | ReadUrlList(str(tmp_path / "*"), max_url_chars=URL_CHARS)
    assert_that(pairs | "Captions" >> beam.Map(lambda a: a.caption), equal_to(["caf\ufffd"]), label="pairs")
    assert_that(rejected | "Reasons" >> beam.Map(lambda r: r.reason), equal_to([BAD_ENCODING, UNREADABLE]),
                label="rejected")
    result = p.run()
    result.wait_until_finish()
    assert counter(result, "pairs_extracted") == 3 and counter(result, UNREADABLE) == 1


def test_a_malformed_line_with_a_latin1_byte_costs_only_that_line(tmp_path, capfd):
    data = b"url,capt\xe9on\nhttp://a.test/1.jpg,ok\nhttp://a.test/2.jpg,caf\xe9,extra\nhttp://a.test/3.jpg,caf\xe9\n"
    pairs, rejected = _read(tmp_path, "l.csv", data)
    assert [p.image_url for p in pairs] == ["http://a.test/1.jpg", "http://a.test/3.jpg"]
    assert [r.reason for r in rejected] == [BAD_ROW] and "caf\ufffd,extra" in rejected[0].detail
    assert "Exception ignored" not in capfd.readouterr().err
    assert dict(pairs[1].extra) == {"capt\ufffdon": "caf\ufffd"}  # a column name is repaired too
