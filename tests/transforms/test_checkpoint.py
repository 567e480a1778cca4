"""Checkpointed (save / resume by key) and bundle retries with injected faults.

Beam's FnApiRunner does not retry a failed bundle (Dataflow retries a batch work item
up to 4 times). ``_RetryBundles`` emulates that runner behaviour around a DoFn, with a
bundle of one element: a failed attempt's outputs are discarded, its side effects
(files written) stay, and the element runs again. Faults are injected on the first
attempt of chosen elements, after the side effects, the worst place for them.

Checkpoint files are data, never pickles: tampered, truncated and foreign files are
ignored with a warning and their pairs fetched again.
"""

import logging
import os
import pickle
from dataclasses import replace

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given
from hypothesis import strategies as st

import transforms.write_shards as write_shards
from pipeline import shard_format
from pipeline.records import AltPair, BlobRef, DropReason, Rejection, ResizedImage, ScoredImage, make_key
from tests.conftest import local_test_pipeline
from transforms.checkpoint import OK, Checkpointed, list_files, read_records
from transforms.checkpoint_format import CheckpointError, decode, encode, schema_for


class InjectedFault(RuntimeError):
    """Raised once per chosen element, on its first attempt."""


def _first_attempt(marks: str, name: str) -> bool:
    """True the first time ``name`` is seen (a marker file: attempts may run in other processes)."""
    path = os.path.join(marks, name)
    if os.path.exists(path):
        return False
    open(path, "w").close()
    return True


class _RetryBundles(beam.DoFn):
    """Run ``inner`` as a runner that retries failed bundles would (outputs of a failed attempt dropped)."""

    ATTEMPTS = 4

    def __init__(self, inner: beam.DoFn):
        self.inner = inner

    def setup(self):
        self.inner.setup()

    def process(self, element):
        for _attempt in range(self.ATTEMPTS):
            try:
                outputs = list(self.inner.process(element) or [])
            except InjectedFault:
                continue
            yield from outputs
            return
        raise RuntimeError(f"{element!r} failed {self.ATTEMPTS} times")


def _pair(i: int) -> AltPair:
    return AltPair(key=make_key("http://s/p", i), page_url="http://s/p", image_url=f"http://s/{i}.jpg",
                   caption=f"caption number {i}", position=i)


def _outcome(pair: AltPair):
    i = pair.position
    if i % 5 == 0:
        return Rejection.of(pair, DropReason.FETCH_TIMEOUT, "slow")
    return ResizedImage(pair=pair, data=b"\xff\xd8\xff" + bytes([i % 256]), ext="jpg", width=8, height=8,
                        original_width=16, original_height=16, sha256=f"{i:064x}")


class _FakeFetchFn(beam.DoFn):
    """Outcome per pair; fails on the first attempt for every 7th pair (``marks``: a directory)."""

    def __init__(self, marks=None, forbid=False):
        self.marks, self.forbid = marks, forbid

    def process(self, pair):
        if self.forbid:
            raise AssertionError(f"{pair.key} was saved: it must not run again")
        if self.marks and pair.position % 7 == 3 and _first_attempt(self.marks, f"fetch-{pair.key}"):
            raise InjectedFault(pair.key)
        out = _outcome(pair)
        yield beam.pvalue.TaggedOutput("rejected", out) if isinstance(out, Rejection) else out


class _FakeFetch(beam.PTransform):
    def __init__(self, fn: beam.DoFn):
        super().__init__()
        self.fn = fn

    def expand(self, pairs):
        out = pairs | "Fetch" >> beam.ParDo(self.fn).with_outputs("rejected", main="ok")
        return out.ok, out.rejected


def _keys(pcoll, label):
    return pcoll | label >> beam.Map(lambda r: r.key if isinstance(r, Rejection) else r.pair.key)


def test_saves_outcomes_then_resume_reuses_them_by_key(tmp_path):
    pairs = [_pair(i) for i in range(40)]
    work = str(tmp_path / "_work" / "fetched")
    with local_test_pipeline() as p:
        ok, rejected = p | beam.Create(pairs) | Checkpointed(_FakeFetch(_FakeFetchFn()), work, flush_every=6)
    saved = [r for path in list_files(work) for r in read_records(path)]
    assert sorted(saved, key=repr) == sorted((_outcome(pr) for pr in pairs), key=repr)
    assert len(list_files(work)) >= 40 // 6
    with local_test_pipeline() as p:  # every pair saved: the stage must not see one
        ok, rejected = (p | beam.Create(pairs)
                        | Checkpointed(_FakeFetch(_FakeFetchFn(forbid=True)), work, resume=True))
        assert_that(_keys(ok, "OkKeys"), equal_to([pr.key for pr in pairs if pr.position % 5]), label="Ok")
        assert_that(_keys(rejected, "RejKeys"), equal_to([pr.key for pr in pairs if not pr.position % 5]),
                    label="Rejected")


def test_resume_runs_unsaved_pairs_and_uses_duplicates_once(tmp_path):
    pairs = [_pair(i) for i in range(20)]
    work = tmp_path / "_work"
    work.mkdir()
    saved = [_outcome(pr) for pr in pairs[:8]]
    ok_saved = [r for r in saved if not isinstance(r, Rejection)]
    # A retried bundle saved the same outcomes twice; a killed write left a temporary file.
    for name in ("ok-a.arrow", "ok-b.arrow"):
        (work / name).write_bytes(encode(ok_saved))
    (work / "rejected-a.arrow").write_bytes(encode([r for r in saved if isinstance(r, Rejection)]))
    (work / "ok-c.arrow.tmp-123").write_bytes(b"half")
    (work / "ok-d.arrow").write_bytes(b"not arrow")  # unreadable: logged, its pairs run again
    with local_test_pipeline() as p:
        ok, rejected = p | beam.Create(pairs) | Checkpointed(_FakeFetch(_FakeFetchFn()), str(work), resume=True)
        all_keys = (_keys(ok, "OkKeys"), _keys(rejected, "RejKeys")) | beam.Flatten()
        assert_that(all_keys, equal_to([pr.key for pr in pairs]))


def _scored(image: ResizedImage) -> ScoredImage:
    return ScoredImage(image=image, clip_score=0.5, clip_model="m")


class _FlakyWriteShardFn(write_shards._WriteShardFn):
    """The real shard writer, failing once per odd shard after the tar (not the parquet) is written."""

    def __init__(self, shards_dir: str, marks: str):
        super().__init__(shards_dir)
        self.marks = marks

    def process(self, bucket_and_records):
        outputs = list(super().process(bucket_and_records))
        if bucket_and_records[0] % 2 and _first_attempt(self.marks, f"shard-{bucket_and_records[0]}"):
            raise InjectedFault(bucket_and_records[0])
        yield from outputs


def _curate_fake(out: str, marks=None, n: int = 120):
    pairs = [_pair(i) for i in range(n)]
    work = os.path.join(out, "_work", "fetched")
    fetch_fn = _RetryBundles(_FakeFetchFn(marks)) if marks else _FakeFetchFn()
    with local_test_pipeline() as p:
        ok, rejected = p | beam.Create(pairs) | Checkpointed(_FakeFetch(fetch_fn), work, flush_every=10)
        _ = ok | "Score" >> beam.Map(_scored) | write_shards.WriteShards(out, 25)
        _ = rejected | write_shards.WriteRejections(out, 10)
    return pairs


def test_bundle_retries_with_injected_faults_lose_and_duplicate_nothing(tmp_path, monkeypatch):
    marks = tmp_path / "marks"
    marks.mkdir()
    clean = _curate_fake(str(tmp_path / "clean"))
    with monkeypatch.context() as m:
        m.setattr(write_shards, "_WriteShardFn",
                  lambda shards_dir: _RetryBundles(_FlakyWriteShardFn(shards_dir, str(marks))))
        _curate_fake(str(tmp_path / "faulty"), marks=str(marks))
    faults = sorted(os.listdir(marks))
    assert any(f.startswith("fetch-") for f in faults) and any(f.startswith("shard-") for f in faults)

    out = tmp_path / "faulty"
    keys = shard_format.read_samples_table(str(out / "shards")).column("key").to_pylist()
    rejected = shard_format.read_rejections_table(str(out)).column("key").to_pylist()
    assert len(keys) == len(set(keys)) and len(rejected) == len(set(rejected))
    assert sorted(keys + rejected) == sorted(pr.key for pr in clean)
    for sub in ("shards", "rejections"):
        names = sorted(os.listdir(out / sub))
        assert names == sorted(os.listdir(tmp_path / "clean" / sub)) and not [n for n in names if ".tmp-" in n]
        for name in names:
            assert (out / sub / name).read_bytes() == (tmp_path / "clean" / sub / name).read_bytes(), name


def test_checkpoint_file_names_say_their_kind(tmp_path):
    with local_test_pipeline() as p:
        _ = p | beam.Create([_pair(1)]) | Checkpointed(_FakeFetch(_FakeFetchFn()), str(tmp_path), flush_every=1)
    assert [os.path.basename(f).split("-")[0] for f in list_files(str(tmp_path))] == [OK]


def test_resume_fetches_again_images_whose_blob_the_kill_cut(tmp_path):
    """A saved outcome points into a blob file (transforms/image_store.py) that lost its tail."""
    pairs = [_pair(i) for i in range(1, 5)]  # all fetch ok
    work, blob = tmp_path / "_work" / "fetched", tmp_path / "_work" / "images" / "x.blob"
    work.mkdir(parents=True)
    blob.parent.mkdir()
    blob.write_bytes(b"\x00" * 30)
    saved = [replace(_outcome(pr), data=b"", blob=BlobRef(str(blob), 10 * n, 10)) for n, pr in enumerate(pairs)]
    (work / "ok-a.arrow").write_bytes(encode(saved))  # pairs[3] ends at byte 40 of 30
    fetched_again = tmp_path / "again"
    fetched_again.mkdir()

    class _Record(_FakeFetchFn):
        def process(self, pair):
            (fetched_again / pair.key).touch()
            yield from super().process(pair)

    with local_test_pipeline() as p:
        ok, _rejected = p | beam.Create(pairs) | Checkpointed(_FakeFetch(_Record()), str(work), resume=True)
        assert_that(_keys(ok, "OkKeys"), equal_to([pr.key for pr in pairs]))
    assert sorted(os.listdir(fetched_again)) == [pairs[3].key]


# -- tampered, truncated and foreign checkpoint files --------------------------------------

class _RunsCode:
    """Unpickling this creates a file: the proof that a reader unpickled what it was given."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


def _arrow(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _rows(records):
    from transforms.checkpoint_format import _to_row
    return [_to_row(r) for r in records]


def _with_field(schema: pa.Schema, name: str, typ) -> pa.Schema:
    return schema.set(schema.get_field_index(name), pa.field(name, typ, nullable=False))


def _tampered(kind: str, good: list, marker: str) -> bytes:
    """The bytes of an ``ok-`` checkpoint file spoiled in one way (``good``: ResizedImage records)."""
    schema, rows = schema_for(ResizedImage), _rows(good)
    if kind == "garbage":
        return b"\x00\xffnot a checkpoint" * 40
    if kind == "empty":
        return b""
    if kind == "pickle":
        return pickle.dumps([_RunsCode(marker), *good], protocol=4)
    if kind == "truncated":
        whole = encode(good)
        return whole[: len(whole) * 2 // 3]
    if kind == "foreign_tag":  # the layout of a record, under a name outside the whitelist
        return _arrow(pa.Table.from_pylist(rows, schema=schema.with_metadata({b"wit.record": b"posix.system",
                                                                            b"wit.checkpoint": b"1"})))
    if kind == "no_tag":
        return _arrow(pa.Table.from_pylist(rows, schema=schema.remove_metadata()))
    if kind == "wrong_schema":  # every field there, width narrowed to int32, one column more
        narrowed = _with_field(schema, "width", pa.int32()).append(pa.field("x", pa.string()))
        return _arrow(pa.Table.from_pylist([{**r, "x": "?"} for r in rows], schema=narrowed))
    if kind == "wrong_type":  # the right names, a string where an int belongs
        return _arrow(pa.Table.from_pylist([{**r, "width": str(r["width"])} for r in rows],
                                           schema=_with_field(schema, "width", pa.string())))
    if kind == "null_field":  # the exact schema, a null in a field that is never None
        return _arrow(pa.Table.from_pylist([{**r, "sha256": None} for r in rows], schema=schema))
    if kind == "wrong_kind":  # rejections in an ok- file
        return encode([Rejection(key=r.pair.key, stage="fetch", reason="fetch.timeout") for r in good])
    if kind == "blob_outside":  # a saved image pointing at a file of the machine
        return encode([replace(r, data=b"", blob=BlobRef("/etc/passwd", 0, 10)) for r in good])
    raise AssertionError(kind)


TAMPERED = ["garbage", "empty", "pickle", "truncated", "foreign_tag", "no_tag", "wrong_schema", "wrong_type",
            "null_field", "wrong_kind", "blob_outside"]


def _good_ok(pairs):
    return [o for o in map(_outcome, pairs) if not isinstance(o, Rejection)]


@pytest.mark.parametrize("kind", TAMPERED)
def test_tampered_checkpoint_file_is_ignored_with_a_warning(tmp_path, caplog, kind):
    work = tmp_path / "_work" / "fetched"
    work.mkdir(parents=True)
    path, marker = work / "ok-x.arrow", tmp_path / "unpickled"
    path.write_bytes(_tampered(kind, _good_ok([_pair(i) for i in range(1, 5)]), str(marker)))
    with caplog.at_level(logging.WARNING, logger="transforms.checkpoint"):
        assert read_records(str(path), str(tmp_path / "_work" / "images")) == []
    assert "ignored" in caplog.text and not marker.exists()


def test_an_untampered_file_reads_back_whole(tmp_path):
    good = _good_ok([_pair(i) for i in range(1, 5)])
    blob = tmp_path / "_work" / "images" / "a.blob"
    good = good[:2] + [replace(r, data=b"", blob=BlobRef(str(blob), 0, 4)) for r in good[2:]]
    path = tmp_path / "ok-x.arrow"
    path.write_bytes(encode(good))
    assert read_records(str(path), str(blob.parent)) == good


def test_resume_fetches_again_the_pairs_of_tampered_files(tmp_path):
    pairs = [_pair(i) for i in range(1, 27)]
    work = tmp_path / "_work" / "fetched"
    work.mkdir(parents=True)
    (work / "ok-good.arrow").write_bytes(encode(_good_ok(pairs[:4])))
    spoiled = [pairs[4 + 2 * n: 6 + 2 * n] for n in range(len(TAMPERED))]
    for kind, group in zip(TAMPERED, spoiled):
        (work / f"ok-{kind}.arrow").write_bytes(_tampered(kind, _good_ok(group), str(tmp_path / "unpickled")))
    (work / "ok-old.pkl").write_bytes(pickle.dumps([_RunsCode(str(tmp_path / "unpickled"))]))
    ran = tmp_path / "ran"
    ran.mkdir()

    class _Record(_FakeFetchFn):
        def process(self, pair):
            (ran / pair.key).touch()
            yield from super().process(pair)

    with local_test_pipeline() as p:
        ok, rejected = p | beam.Create(pairs) | Checkpointed(_FakeFetch(_Record()), str(work), resume=True)
        all_keys = (_keys(ok, "OkKeys"), _keys(rejected, "RejKeys")) | beam.Flatten()
        assert_that(all_keys, equal_to([pr.key for pr in pairs]))
    reused = {r.pair.key for r in _good_ok(pairs[:4])}
    assert sorted(os.listdir(ran)) == sorted(pr.key for pr in pairs if pr.key not in reused)
    assert not (tmp_path / "unpickled").exists()


def test_outcomes_arrow_cannot_hold_are_left_out_not_fatal(tmp_path):
    good = _good_ok([_pair(i) for i in range(1, 4)])
    odd = replace(good[0], pair=replace(good[0].pair, caption="lone \ud800 surrogate"))
    with pytest.raises(CheckpointError):
        encode([odd])
    from transforms.checkpoint import encode_saved
    payloads = encode_saved([odd, *good[1:]])
    assert [r for p in payloads for r in decode(p)] == good[1:]


def test_new_record_fields_are_carried_without_a_change():
    """Columns come from the dataclass fields: every field of every record type round-trips."""
    pair = AltPair(key="k", page_url="p", image_url="i", caption="c", declared_width=7,
                   extra=(("s", "v"), ("i", -3), ("f", 0.25), ("b", False), ("n", None)))
    image = ResizedImage(pair=pair, data=b"\x00\xff", ext="png", width=1, height=2, original_width=3,
                         original_height=4, sha256="0" * 64, blob=BlobRef("gs://b/o", 5, 6))
    scored = ScoredImage(image=image, clip_score=None, image_embedding=b"\x01", safety=(("nsfw", 0.5),))
    for record in (pair, image, scored, Rejection.of(pair, DropReason.FETCH_TIMEOUT, "slow")):
        back = decode(encode([record]))
        assert back == [record] and type(back[0].pair if hasattr(back[0], "pair") else back[0]) is not dict
    assert [type(v) for _n, v in decode(encode([pair]))[0].extra] == [str, int, float, bool, type(None)]


@pytest.mark.fuzz
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_load_a_record(data):
    with pytest.raises(CheckpointError):
        decode(data)


_GOOD_BYTES = encode(_good_ok([_pair(i) for i in range(1, 6)]))


@pytest.mark.fuzz
@given(st.lists(st.tuples(st.integers(0, len(_GOOD_BYTES) - 1), st.integers(0, 255)), min_size=1, max_size=8),
       st.one_of(st.none(), st.integers(0, len(_GOOD_BYTES) - 1)))
def test_a_corrupted_file_is_refused_or_reads_as_checked_records(edits, cut):
    data = bytearray(_GOOD_BYTES)
    for pos, value in edits:
        data[pos] = value
    try:
        records = decode(bytes(data if cut is None else data[:cut]))
    except CheckpointError:
        return
    assert all(type(r) is ResizedImage for r in records)
    assert decode(encode(records)) == records  # every field type-checked: it writes back the same
