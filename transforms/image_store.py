"""SpillImages: move resized image bytes out of the records, into blob files under OUT/_work/images.

Input: ``ResizedImage`` with its encoded bytes in ``data``. Output: the same record
with ``data=b""`` and ``blob=BlobRef(path, offset, length)``; nothing is dropped.
``image_bytes(record)`` gives the bytes back, from ``data`` or from the blob.

Why: after the download, a sample's image is only needed twice more (ScoreClip and
WriteShards), but the record crosses several shuffles and fused-stage boundaries on
the way (exact dedupe, the near-dedupe join, the shard grouping). Beam runners
materialise those — the local FnApiRunner keeps whole PCollections in memory — so
bytes carried inline made peak memory grow with the input (bench/memory.py). A
reference is ~100 bytes however large the image.

Files: each DoFn instance appends to ``<uuid>.blob`` and closes it at the end of the
bundle (through Beam ``FileSystems``: local paths and ``gs://`` alike). A retried
bundle writes a new file; the old one is simply never referenced. The whole of
OUT/_work goes when the run succeeds (unless ``output.keep_fetched``: the saved
fetch outcomes of ``--incremental`` point into these files).

A blob file is complete only when its bundle ends; on object stores readers must
therefore sit behind a shuffle (pipeline/build.py adds one when no dedupe does).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections import OrderedDict
from dataclasses import replace

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipeline.records import BlobRef, ResizedImage

IMAGES = "images"  # OUT/_work/images (transforms/checkpoint.py's work_dir)


class MissingImage(RuntimeError):
    """A blob a record points at cannot be read: the run's work files were removed or cut."""


def _absolute(path: str) -> str:
    """Local paths made absolute, so every worker process resolves them alike."""
    return path if "://" in path else os.path.abspath(path)


class _SpillFn(beam.DoFn):
    """Append each image's bytes to this bundle's blob file; emit the record with a reference."""

    def __init__(self, directory: str):
        self.directory = _absolute(directory)  # resolved where the graph is built
        self.fh = self.path = None
        self.offset = 0

    def setup(self):
        if "://" not in self.directory:
            os.makedirs(self.directory, exist_ok=True)

    def process(self, image: ResizedImage):
        if not image.data:  # spilled already (or nothing to spill)
            yield image
            return
        if self.fh is None:
            self.path = FileSystems.join(self.directory, f"{uuid.uuid4().hex}.blob")
            self.fh, self.offset = FileSystems.create(self.path), 0
        self.fh.write(image.data)
        ref = BlobRef(self.path, self.offset, len(image.data))
        self.offset += len(image.data)
        yield replace(image, data=b"", blob=ref)

    def finish_bundle(self):
        if self.fh is not None:
            self.fh.close()
            self.fh = self.path = None

    def teardown(self):
        self.finish_bundle()


class SpillImages(beam.PTransform):
    """ResizedImage -> the same, its bytes in a blob file under ``directory``."""

    def __init__(self, directory: str):
        super().__init__()
        self.directory = directory

    def expand(self, images):
        return images | "Spill" >> beam.ParDo(_SpillFn(self.directory))


class _Handles:
    """Open blob files, most recently used kept (per process; readers may be threads)."""

    def __init__(self, size: int = 16):
        self.size, self.lock, self.open_files = size, threading.Lock(), OrderedDict()

    def read(self, ref: BlobRef) -> bytes:
        with self.lock:
            fh = self.open_files.pop(ref.path, None)
            try:
                if fh is None:
                    fh = FileSystems.open(ref.path)
                fh.seek(ref.offset)
                data = fh.read(ref.length)
            except (OSError, ValueError) as exc:
                raise MissingImage(f"cannot read {ref.length} bytes at {ref.offset} of {ref.path}: {exc}") from exc
            self.open_files[ref.path] = fh
            while len(self.open_files) > self.size:
                self.open_files.popitem(last=False)[1].close()
        if len(data) != ref.length:
            raise MissingImage(f"{ref.path} ends before byte {ref.offset + ref.length} (read {len(data)})")
        return data


_HANDLES = _Handles()


def image_bytes(image: ResizedImage) -> bytes:
    """The encoded image: inline, or read back from its blob file."""
    if image.blob is None:
        return image.data
    return _HANDLES.read(image.blob)


def blob_complete(record, sizes: dict) -> bool:
    """Whether a fetch outcome's image (if spilled) is wholly in its file. ``sizes``: path -> bytes, a cache.

    A run killed mid-bundle can leave a saved fetch outcome whose blob file was never
    closed (object stores) or lost its unflushed tail (local disk); --resume fetches
    such images again rather than trusting them.
    """
    ref = getattr(record, "blob", None)  # a Rejection has none
    if ref is None:
        return True
    if ref.path not in sizes:
        try:
            found = FileSystems.match([ref.path])[0].metadata_list
        except (OSError, ValueError):  # BeamIOError is an OSError
            found = []
        sizes[ref.path] = found[0].size_in_bytes if found else -1
    return sizes[ref.path] >= ref.offset + ref.length


def image_length(image: ResizedImage) -> int:
    return image.blob.length if image.blob is not None else len(image.data)
