"""transforms/image_store.py: image bytes spilled to blob files and read back."""

from __future__ import annotations

from dataclasses import replace

import os
import pickle

import apache_beam as beam
import pytest

from pipeline.records import AltPair, BlobRef, ResizedImage
from tests.conftest import local_test_pipeline
from transforms.image_store import MissingImage, SpillImages, blob_complete, image_bytes, image_length


def _image(key: str, data: bytes) -> ResizedImage:
    pair = AltPair(key, "http://s/p", f"http://s/{key}.jpg", "a red square")
    return ResizedImage(pair=pair, data=data, ext="jpg", width=8, height=8, original_width=8,
                        original_height=8, sha256=key * 8)


def _spill(tmp_path, records) -> list:
    out_file = tmp_path / "out.pkl"

    def save(items):
        out_file.write_bytes(pickle.dumps(sorted(items, key=lambda r: r.pair.key)))

    with local_test_pipeline() as p:
        (p | beam.Create(records) | SpillImages(str(tmp_path / "images"))
         | beam.combiners.ToList() | beam.Map(save))
    return pickle.loads(out_file.read_bytes())


def test_spilled_records_carry_references_and_read_back(tmp_path):
    payloads = {f"k{i}": os.urandom(100 + i * 37) for i in range(20)}
    out = _spill(tmp_path, [_image(k, v) for k, v in payloads.items()])
    assert len(out) == 20
    for image in out:
        assert image.data == b"" and image.blob is not None and os.path.isabs(image.blob.path)
        assert image_length(image) == len(payloads[image.pair.key])
        assert image_bytes(image) == payloads[image.pair.key]
    blobs = os.listdir(tmp_path / "images")
    assert blobs and all(name.endswith(".blob") for name in blobs)
    # the pickled record is small whatever the image size
    assert len(pickle.dumps(out[0])) < 700


def test_inline_records_pass_through(tmp_path):
    image = _image("a", b"")
    assert image_bytes(_image("b", b"xyz")) == b"xyz"
    out = _spill(tmp_path, [image])
    assert out == [image]  # nothing to spill: no reference, no file needed


def test_missing_or_cut_blob_is_a_clear_error(tmp_path):
    path = tmp_path / "x.blob"
    path.write_bytes(b"0123456789")
    ok = _image("a", b"")
    assert image_bytes(replace(ok, blob=BlobRef(str(path), 2, 5))) == b"23456"
    with pytest.raises(MissingImage, match="ends before"):
        image_bytes(replace(ok, blob=BlobRef(str(path), 8, 5)))
    with pytest.raises(MissingImage, match="cannot read"):
        image_bytes(replace(ok, blob=BlobRef(str(tmp_path / "gone.blob"), 0, 5)))


def test_blob_complete_checks_the_file_holds_the_bytes(tmp_path):
    path = tmp_path / "x.blob"
    path.write_bytes(b"0" * 100)
    base = _image("a", b"")
    sizes: dict = {}
    assert blob_complete(base, sizes)  # inline: nothing to check
    assert blob_complete(replace(base, blob=BlobRef(str(path), 90, 10)), sizes)
    assert not blob_complete(replace(base, blob=BlobRef(str(path), 95, 10)), sizes)
    assert not blob_complete(replace(base, blob=BlobRef(str(tmp_path / "no"), 0, 1)), sizes)
    assert sizes[str(path)] == 100  # one lookup per file
