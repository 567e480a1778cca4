"""Helpers shared by the writers of the output contract (shards, rejections, embeddings, stats).

Input: payload bytes, sample keys, records. Output: files written atomically (through
Beam ``FileSystems``: local paths and ``gs://`` alike), the file bucket of a key, and
records packed into one ``bytes`` for a writer's shuffle. Nothing is dropped.

Why packing: the FnApiRunner holds a GroupByKey's whole input in memory, decoded. A
ScoredImage decoded is ~2.0 KB of small Python objects (bench/memory.py); the same
record pickled into one ``bytes`` is one object of ~1 KB, and the writer unpacks one
file's records at a time. Pickle, not a row format: every field (URL-list extras of
any type, float bits) comes back exactly, so the files are the same bytes.
"""

from __future__ import annotations

import math
import pickle
import uuid

from apache_beam.io.filesystems import FileSystems


def write_atomically(path: str, payload: bytes) -> None:
    """Write to a unique temporary name, then rename over ``path``."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    with FileSystems.create(tmp) as fh:
        fh.write(payload)
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([tmp], [path])


def bucket_of(key: str, count: int, per_file: int) -> int:
    """The file of a sample: ``int(key, 16) % ceil(count / per_file)`` (keys are uniform hex digests)."""
    buckets = max(1, math.ceil(count / per_file))
    return int(key, 16) % buckets


def pack(value) -> bytes:
    """``value`` as one bytes object (for a writer's shuffle; see the module docstring)."""
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def unpack(packed: bytes):
    return pickle.loads(packed)
