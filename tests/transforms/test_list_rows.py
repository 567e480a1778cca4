"""list_rows: a URL list's uid column (DataComp's pool layout) becomes AltPair.uid."""

import json
import logging
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.records import AltPair, Rejection
from pipeline.specs import extract_spec
from tests.default_specs import spec_with
from transforms.list_rows import file_rows, parse_uid, uid_invalid
from transforms.url_guard import MAX_URL_CHARS
from transforms.url_list import read_list_file

URL_CHARS = spec_with(extract_spec).max_url_chars  # extract.max_url_chars of the default config

U1 = "0123456789abcdef0123456789abcdef"
U2 = "00000000000000000000000000000001"  # leading zeros: read as an integer it would become 1
U3 = "12345678901234567890123456789012"  # all decimal digits: a CSV reader would type it as a number


@pytest.mark.parametrize("value, expected", [
    (U1, (U1, "")),
    (U1.upper(), (U1, "")),                      # hex is case-blind; written lower case, as DataComp
    (f"  {U1}\t", (U1, "")),
    (None, ("", "")),                             # no uid given
    ("", ("", "")),
    ("   ", ("", "")),
    (U1[:-1], ("", "not 32 hex digits")),
    (U1 + "0", ("", "not 32 hex digits")),
    ("g" * 32, ("", "not 32 hex digits")),
    ("0x" + U1[2:], ("", "not 32 hex digits")),
    ("０" * 32, ("", "not 32 hex digits")),       # fullwidth digits: not ASCII hex
    (f"{U1[:16]} {U1[16:]}", ("", "not 32 hex digits")),
    (f"{U1}\n{U1}", ("", "not 32 hex digits")),
    (12345, ("", "a int, not text")),
    (1.5, ("", "a float, not text")),
    (True, ("", "a bool, not text")),
    (b"0123456789abcdef0123456789abcdef", ("", "a bytes, not text")),
])
def test_parse_uid(value, expected):
    uid, problem = parse_uid(value)
    assert uid == expected[0]
    assert problem.startswith(expected[1]) and bool(problem) == bool(expected[1])


def _write(tmp_path, fmt: str, rows: list[dict]) -> str:
    path = tmp_path / f"pool.{fmt}"
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif fmt in ("csv", "tsv"):
        sep = "," if fmt == "csv" else "\t"
        names = list(rows[0])
        path.write_text(sep.join(names) + "\n" + "".join(
            sep.join("" if r[n] is None else str(r[n]) for n in names) + "\n" for r in rows))
    elif fmt == "json":
        path.write_text(json.dumps(rows))
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


_ROWS = [
    {"uid": U1, "url": "http://a.example/1.jpg", "text": "a red fox in the snow", "original_width": 640},
    {"uid": U2, "url": "http://a.example/2.jpg", "text": "two dogs on a beach", "original_width": 300},
    {"uid": U3, "url": "http://a.example/3.jpg", "text": "a blue car", "original_width": 200},
    {"uid": "not-a-uid", "url": "http://a.example/4.jpg", "text": "a kept row", "original_width": 100},
    {"uid": None, "url": "http://a.example/5.jpg", "text": "no uid given", "original_width": 100},
]


@pytest.mark.parametrize("fmt", ["parquet", "csv", "tsv", "json", "jsonl"])
def test_uid_column_is_carried_in_every_format(tmp_path, fmt):
    out = list(read_list_file(_write(tmp_path, fmt, _ROWS), "url", "text", max_url_chars=URL_CHARS))
    assert all(isinstance(o, AltPair) for o in out)
    assert [o.uid for o in out] == [U1, U2, U3, "", ""]
    # a valid uid leaves extra (it is a field now); an invalid one stays there, nothing lost
    assert [dict(o.extra).get("uid") for o in out] == [None, None, None, "not-a-uid", None]
    assert [uid_invalid(o) for o in out] == [False, False, False, True, False]
    assert all("original_width" in dict(o.extra) for o in out)


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_csv_uids_that_look_like_numbers_stay_text(tmp_path, fmt):
    """A column of only digit uids must not be typed as a number (leading zeros, 32 digits)."""
    rows = [{"uid": u, "url": f"http://a.example/{i}.jpg", "caption": "a b c"} for i, u in enumerate([U2, U3])]
    assert [o.uid for o in read_list_file(_write(tmp_path, fmt, rows), max_url_chars=URL_CHARS)] == [U2, U3]


def test_datacomp_pool_layout(tmp_path):
    """DataComp's pool parquet columns: the uid is carried, text is the caption, the rest rides in extra."""
    table = pa.table({
        "uid": [U1, U2], "url": ["http://a.example/1.jpg", "http://a.example/2.jpg"],
        "text": ["a red fox in the snow", "two dogs on a beach"],
        "original_width": pa.array([640, 300], pa.int64()), "original_height": pa.array([480, 300], pa.int64()),
        "clip_b32_similarity_score": pa.array([0.31, 0.22], pa.float32()),
        "clip_l14_similarity_score": pa.array([0.27, 0.19], pa.float32()),
        "face_bboxes": pa.array([[[0.1, 0.2, 0.3, 0.4]], []], pa.list_(pa.list_(pa.float64()))),
        "sha256": ["ab" * 32, "cd" * 32],
    })
    pq.write_table(table, tmp_path / "pool.parquet")
    a, b = read_list_file(str(tmp_path / "pool.parquet"), "url", "text", max_url_chars=URL_CHARS)
    assert (a.uid, a.caption, b.uid) == (U1, "a red fox in the snow", U2)
    extra = dict(a.extra)
    assert sorted(extra) == ["clip_b32_similarity_score", "clip_l14_similarity_score", "face_bboxes",
                             "original_height", "original_width", "sha256"]
    assert extra["original_width"] == 640 and json.loads(extra["face_bboxes"]) == [[0.1, 0.2, 0.3, 0.4]]


def test_uid_column_name_is_configurable_and_can_be_off(tmp_path):
    path = _write(tmp_path, "jsonl", [{"id": U1, "uid": U2, "url": "http://a.example/1.jpg", "caption": "c d e"}])
    (by_id,) = read_list_file(path, uid_col="id", max_url_chars=URL_CHARS)
    assert by_id.uid == U1 and dict(by_id.extra) == {"uid": U2}
    (off,) = read_list_file(path, uid_col="", max_url_chars=URL_CHARS)
    assert off.uid == "" and dict(off.extra) == {"id": U1, "uid": U2} and not uid_invalid(off, "")


def test_rows_without_a_uid_column_have_no_uid(tmp_path):
    path = _write(tmp_path, "csv", [{"url": "http://a.example/1.jpg", "caption": "a b c"}])
    (pair,) = read_list_file(path, max_url_chars=URL_CHARS)
    assert pair.uid == "" and pair.extra == ()


def test_invalid_uids_are_counted_once_per_file_in_a_warning(tmp_path, caplog):
    rows = [{"uid": v, "url": f"http://a.example/{i}.jpg", "caption": "a b c"}
            for i, v in enumerate([U1, "xyz", 7, None, U1[:31]])]
    with caplog.at_level(logging.WARNING, logger="transforms.url_list"):
        out = list(read_list_file(_write(tmp_path, "jsonl", rows), max_url_chars=URL_CHARS))
    assert len(out) == 5 and [o.uid for o in out] == [U1, "", "", "", ""]
    (record,) = [r for r in caplog.records if "uid" in r.getMessage()]
    assert re.search(r"3 row\(s\) with a 'uid' value that is not a 32-hex-digit uid \(e\.g\. 'xyz'\)", record.getMessage())


def test_a_bad_url_row_is_still_rejected_whatever_its_uid(tmp_path):
    path = _write(tmp_path, "jsonl", [{"uid": U1, "url": "ftp://a.example/1.jpg", "caption": "a b c"}])
    (rej,) = read_list_file(path, max_url_chars=URL_CHARS)
    assert isinstance(rej, Rejection) and rej.reason == "extract.bad_url"


# ---- fuzz ---------------------------------------------------------------------------------------

_HEX = st.text("0123456789abcdefABCDEF", min_size=30, max_size=34)
_UID_VALUES = st.one_of(_HEX, _HEX.map(lambda h: f" {h}\n"), st.text(max_size=40), st.none(), st.integers(),
                        st.floats(allow_nan=True), st.booleans(), st.binary(max_size=33), st.just("\ud800" * 32),
                        st.lists(st.integers(), max_size=2))


@pytest.mark.fuzz
@given(_UID_VALUES)
def test_parse_uid_never_raises_and_gives_only_uids(value):
    uid, problem = parse_uid(value)
    if uid:
        assert not problem and re.fullmatch("[0-9a-f]{32}", uid) and uid == value.strip().lower()
        assert int(uid, 16) < 2 ** 128
    elif problem:
        assert value is not None and not (isinstance(value, str) and not value.strip())
    else:
        assert value is None or (isinstance(value, str) and not value.strip())


@pytest.mark.fuzz
@given(st.lists(_UID_VALUES, min_size=1, max_size=6), st.sampled_from(["jsonl", "parquet"]))
def test_every_row_keeps_its_uid_or_its_value(values, fmt):
    if fmt == "jsonl":
        rows = [json.dumps({"uid": v if not isinstance(v, bytes) else v.hex(), "url": f"http://h.example/{i}",
                            "caption": "a b c"}) for i, v in enumerate(values)]
        data = "\n".join(rows).encode("utf-8", "surrogatepass")
    else:
        column = [v if isinstance(v, str) and "\ud800" not in v else None for v in values]
        table = pa.table({"uid": pa.array(column, pa.string()), "url": [f"http://h.example/{i}" for i in range(len(values))]})
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        data = sink.getvalue().to_pybytes()
    out = list(file_rows(fmt, data, "list:/x", f"/x.{fmt}", "url", "caption", MAX_URL_CHARS))
    assert len(out) == len(values)  # every row a pair (a uid never drops one) or an encoding rejection
    for o in out:
        if isinstance(o, AltPair):
            names = [n for n, _ in o.extra]
            assert (bool(o.uid) and "uid" not in names) or not o.uid
            assert not o.uid or re.fullmatch("[0-9a-f]{32}", o.uid)
