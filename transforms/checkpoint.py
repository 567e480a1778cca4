"""Checkpointed: keep a stage's outcomes on disk while a run goes, reuse them on ``--resume``.

Input: what a wrapped stage takes (``AltPair`` for FetchImages, the slow, networked
step). Output: what it returns, ``(ok, rejected)``, one record per input pair.
Side files (through Beam ``FileSystems``, so local paths and ``gs://`` alike)::

    OUT/_work/<name>/ok-<uuid>.arrow, rejected-<uuid>.arrow   records as Arrow IPC data

Each file is written under a temporary name and renamed when complete, every
``flush_every`` records and at the end of each bundle, so a run killed half way
(SIGKILL, a lost worker) leaves whole files only. With ``resume``, the files are
read back first; a pair whose key they hold is not sent to the stage again, and
its saved outcome takes its place in the output. A retried bundle may have saved
a key twice: one record per key is used, chosen the same way on every run.

Nothing is dropped: every input pair leaves as its saved outcome or the stage's.
A file that cannot be read is logged and skipped (its pairs run again), and so is
a saved image whose blob file (transforms/image_store.py) the kill left incomplete.

Never pickle: ``OUT`` may be a bucket others can write, and unpickling runs code.
The files are data (transforms/checkpoint_format.py): only whitelisted record
types come out, every field type-checked. A file that is not such data (garbage,
a pickle, another schema, a value of the wrong type), or whose records do not fit
its kind (a success in a ``rejected-`` file) or point at a blob outside this run's
``OUT/_work/images``, is ignored with a warning and its pairs are fetched again.
Files of an older version (``*.pkl``) are never opened. A record Arrow cannot
hold (a lone surrogate in a caption) is not saved; its pair runs again on resume.
Neither is an ``*.internal_error`` rejection (pipeline/faults.py): that is a bug met,
not the pair's outcome, and a resume (with the bug fixed, say) tries the pair again.

Keys at 100M pairs: ``JoinSaved`` (a CoGroupByKey on the pair key) has one pair per key plus
its saved outcomes (one, or a few where retried bundles saved it twice); ``SpreadFiles`` is a
``Reshuffle`` of file names. No key grows with the run.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from typing import Optional

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipeline.faults import is_internal
from pipeline.records import Rejection, pair_of
from transforms.checkpoint_format import CheckpointError, decode, encode
from transforms.image_store import IMAGES, blob_complete
from transforms.output_files import write_atomically

log = logging.getLogger(__name__)

WORK_DIR = "_work"
FETCHED = "fetched"  # OUT/_work/fetched: FetchImages outcomes (pipeline/build.py)
OK, REJECTED = "ok", "rejected"
SUFFIX = ".arrow"


def work_dir(output_dir: str, name: str) -> str:
    return FileSystems.join(output_dir, WORK_DIR, name)


def key_of(record) -> str:
    return record.key if isinstance(record, Rejection) else pair_of(record).key


def _rank(record) -> tuple:
    """Which of several saved outcomes of one key is used: a success first, then by content.

    ``repr`` of a record is its field values, the same in every process and run (no pickle)."""
    digest = hashlib.sha256(repr(record).encode("utf-8", errors="surrogatepass")).hexdigest()
    return isinstance(record, Rejection), digest


def _local(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


def images_dir_for(directory: str) -> str:
    """OUT/_work/images beside a checkpoint directory OUT/_work/<name>: where saved blobs may point."""
    return FileSystems.join(FileSystems.split(_local(directory))[0], IMAGES)


def blob_inside(record, images_dir: Optional[str]) -> bool:
    """Whether a record's blob (if any) is a file directly in ``images_dir``.

    A tampered checkpoint could otherwise point a saved image at any readable file
    (``/etc/shadow``, another bucket) and have it copied into the shards."""
    ref = getattr(record, "blob", None)
    if ref is None or images_dir is None:
        return True
    prefix = images_dir.rstrip("/") + "/"
    rest = ref.path[len(prefix):] if ref.path.startswith(prefix) else ""
    return bool(rest) and "/" not in rest and rest not in (".", "..") and ref.offset >= 0 and ref.length >= 0


def _fits_kind(record, kind: str) -> bool:
    return isinstance(record, Rejection) == (kind == REJECTED)


def check_file(records: list, kind: str, images_dir: Optional[str]) -> Optional[str]:
    """Why decoded records cannot be this run's ``kind`` outcomes (None when they can)."""
    for record in records:
        if not _fits_kind(record, kind):
            return f"a {type(record).__name__} in a {kind!r} file"
        if not blob_inside(record, images_dir):
            return f"a blob outside {images_dir}: {record.blob.path[:200]!r}"
    return None


def kind_of(path: str) -> str:
    return path.rsplit("/", 1)[-1].split("-", 1)[0]


def read_records(path: str, images_dir: Optional[str] = None) -> list:
    """The records of one checkpoint file ([] when it is not one this run can trust)."""
    try:
        with FileSystems.open(path) as fh:
            records = decode(fh.read())
    except (OSError, CheckpointError) as exc:  # BeamIOError is an OSError
        log.warning("checkpoint file %s ignored, its pairs run again: %s", path, exc)
        return []
    why = check_file(records, kind_of(path), images_dir)
    if why:
        log.warning("checkpoint file %s ignored, its pairs run again: %s", path, why)
        return []
    return records


def list_files(directory: str) -> list:
    """Sorted checkpoint files of ``directory`` (temporary names excluded)."""
    found = FileSystems.match([FileSystems.join(directory, "*")])[0].metadata_list
    paths = sorted(m.path for m in found)
    if any(p.endswith(".pkl") for p in paths):
        log.warning("%s holds pickled checkpoints of an older version: never unpickled, their pairs run again",
                    directory)
    return [p for p in paths if p.endswith(SUFFIX) and kind_of(p) in (OK, REJECTED)]


def encode_saved(records: list) -> list:
    """Arrow files for ``records`` (one per record type); a record Arrow cannot hold is left out, logged."""
    by_type: dict = {}
    for record in records:
        by_type.setdefault(type(record), []).append(record)
    payloads = []
    for group in by_type.values():
        try:
            payloads.append(encode(group))
            continue
        except CheckpointError:
            pass
        kept = []
        for record in group:  # find the few that cannot be saved
            try:
                encode([record])
                kept.append(record)
            except CheckpointError as exc:
                log.warning("outcome of %s not checkpointed (it runs again on resume): %s", key_of(record), exc)
        if kept:
            payloads.append(encode(kept))
    return payloads


class _SaveFn(beam.DoFn):
    """Pass-through side effect: buffer records, write them as one file every ``flush_every``."""

    def __init__(self, directory: str, kind: str, flush_every: int):
        self.directory, self.kind, self.flush_every = directory, kind, flush_every
        self.buffer: list = []

    def start_bundle(self):
        self.buffer = []

    def process(self, record):
        if isinstance(record, Rejection) and is_internal(record.reason):
            return  # a bug of ours, not the item's outcome: a resume with a fixed build tries it again
        self.buffer.append(record)
        if len(self.buffer) >= self.flush_every:
            self._flush()

    def finish_bundle(self):
        self._flush()

    def _flush(self):
        if not self.buffer:
            return
        for payload in encode_saved(self.buffer):
            name = f"{self.kind}-{uuid.uuid4().hex}{SUFFIX}"
            write_atomically(FileSystems.join(self.directory, name), payload)
        self.buffer = []


def _load(path: str, images_dir: Optional[str] = None):
    kind, sizes = kind_of(path), {}
    for record in read_records(path, images_dir):
        if blob_complete(record, sizes):  # else its image is fetched again
            yield key_of(record), (kind, record)


def _join(key_and_joined):
    """One saved outcome (tagged) when the key has one, else the pairs to run."""
    _key, joined = key_and_joined
    saved = sorted(joined["saved"], key=lambda kind_record: _rank(kind_record[1]))
    if saved:
        kind, record = saved[0]
        if joined["pair"]:  # a saved key no pair of this run has is not output
            yield beam.pvalue.TaggedOutput(kind, record)
        return
    yield from joined["pair"]


class Checkpointed(beam.PTransform):
    """Wrap a ``pairs -> (ok, rejected)`` stage: save its outcomes; with ``resume``, reuse saved ones."""

    def __init__(self, stage: beam.PTransform, directory: str, resume: bool = False, flush_every: int = 500):
        super().__init__()
        self.stage, self.directory, self.resume, self.flush_every = stage, directory, resume, flush_every

    def _skip_saved(self, pairs):
        saved = (pairs.pipeline
                 | "SavedFiles" >> beam.Create([self.directory])
                 | "ListSaved" >> beam.FlatMap(list_files)
                 | "SpreadFiles" >> beam.Reshuffle()
                 | "ReadSaved" >> beam.FlatMap(_load, images_dir_for(self.directory)))
        keyed = pairs | "KeyPairs" >> beam.Map(lambda pair: (pair.key, pair))
        out = ({"pair": keyed, "saved": saved} | "JoinSaved" >> beam.CoGroupByKey()
               | "SkipSaved" >> beam.FlatMap(_join).with_outputs(OK, REJECTED, main="todo"))
        return out.todo, out[OK], out[REJECTED]

    def expand(self, pairs):
        reused_ok: Optional[beam.PCollection] = None
        if self.resume:
            pairs, reused_ok, reused_rejected = self._skip_saved(pairs)
        ok, rejected = pairs | "Run" >> self.stage
        ok | "SaveOk" >> beam.ParDo(_SaveFn(self.directory, OK, self.flush_every))
        rejected | "SaveRejected" >> beam.ParDo(_SaveFn(self.directory, REJECTED, self.flush_every))
        if reused_ok is None:
            return ok, rejected
        return ((ok, reused_ok) | "WithReusedOk" >> beam.Flatten(),
                (rejected, reused_rejected) | "WithReusedRejected" >> beam.Flatten())
