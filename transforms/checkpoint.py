"""Checkpointed: keep a stage's outcomes on disk while a run goes, reuse them on ``--resume``.

Input: what a wrapped stage takes (``AltPair`` for FetchImages, the slow, networked
step). Output: what it returns, ``(ok, rejected)``, one record per input pair.
Side files (through Beam ``FileSystems``, so local paths and ``gs://`` alike)::

    OUT/_work/<name>/ok-<uuid>.pkl, rejected-<uuid>.pkl   pickled lists of records

Each file is written under a temporary name and renamed when complete, every
``flush_every`` records and at the end of each bundle, so a run killed half way
(SIGKILL, a lost worker) leaves whole files only. With ``resume``, the files are
read back first; a pair whose key they hold is not sent to the stage again, and
its saved outcome takes its place in the output. A retried bundle may have saved
a key twice: one record per key is used, chosen the same way on every run.

Nothing is dropped: every input pair leaves as its saved outcome or the stage's.
A file that cannot be read is logged and skipped (its pairs run again), and so is
a saved image whose blob file (transforms/image_store.py) the kill left incomplete.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import uuid
from typing import Optional

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipeline.records import Rejection, pair_of
from transforms.image_store import blob_complete
from transforms.write_shards import write_atomically

log = logging.getLogger(__name__)

WORK_DIR = "_work"
FETCHED = "fetched"  # OUT/_work/fetched: FetchImages outcomes (pipeline/build.py)
OK, REJECTED = "ok", "rejected"


def work_dir(output_dir: str, name: str) -> str:
    return FileSystems.join(output_dir, WORK_DIR, name)


def key_of(record) -> str:
    return record.key if isinstance(record, Rejection) else pair_of(record).key


def _rank(record) -> tuple:
    """Which of several saved outcomes of one key is used: a success first, then by content."""
    return (isinstance(record, Rejection), hashlib.sha256(pickle.dumps(record, protocol=4)).hexdigest())


def read_records(path: str) -> list:
    """The records of one checkpoint file ([] when it cannot be read)."""
    try:
        with FileSystems.open(path) as fh:
            records = pickle.loads(fh.read())
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError) as exc:
        log.warning("checkpoint file %s unreadable, its pairs run again: %s", path, exc)
        return []
    return records if isinstance(records, list) else []


def list_files(directory: str) -> list:
    """Sorted checkpoint files of ``directory`` (temporary names excluded)."""
    pattern = FileSystems.join(directory, "*.pkl")
    return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)


class _SaveFn(beam.DoFn):
    """Pass-through side effect: buffer records, write them as one file every ``flush_every``."""

    def __init__(self, directory: str, kind: str, flush_every: int):
        self.directory, self.kind, self.flush_every = directory, kind, flush_every
        self.buffer: list = []

    def start_bundle(self):
        self.buffer = []

    def process(self, record):
        self.buffer.append(record)
        if len(self.buffer) >= self.flush_every:
            self._flush()

    def finish_bundle(self):
        self._flush()

    def _flush(self):
        if not self.buffer:
            return
        name = f"{self.kind}-{uuid.uuid4().hex}.pkl"
        write_atomically(FileSystems.join(self.directory, name), pickle.dumps(self.buffer, protocol=4))
        self.buffer = []


def _load(path: str):
    kind, sizes = path.rsplit("/", 1)[-1].split("-", 1)[0], {}
    for record in read_records(path):
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
                 | "ReadSaved" >> beam.FlatMap(_load))
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
