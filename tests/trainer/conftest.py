"""Trainer fixtures: small deterministic shards of coloured squares, the tiny model config.

Shards are written here with tarfile + PIL (not the pipeline's writer) so the trainer is tested
against the documented format (DESIGN.md §6) on its own.
"""

from __future__ import annotations

import io
import json
import os
import random
import tarfile
from pathlib import Path

import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY_MODEL = str(Path(__file__).resolve().parents[2] / "configs" / "models" / "wit-tiny.json")
COLOURS = {
    "red": (220, 30, 30), "green": (30, 180, 40), "blue": (30, 60, 220),
    "yellow": (240, 220, 30), "purple": (140, 40, 170), "orange": (250, 140, 20),
    "black": (10, 10, 10), "white": (250, 250, 250),
}
SHARD_SIZE = 40


def square_image(colour: tuple[int, int, int], rng: random.Random, size: int = 64) -> Image.Image:
    """A coloured square at a random place and size on a grey background."""
    image = Image.new("RGB", (size, size), (128, 128, 128))
    side = rng.randint(size // 2, size - 8)
    x, y = rng.randint(0, size - side), rng.randint(0, size - side)
    image.paste(colour, (x, y, x + side, y + side))
    return image


def encode(image: Image.Image, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, quality=90) if fmt == "JPEG" else image.save(buf, format=fmt)
    return buf.getvalue()


def add_member(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mtime = 946684800
    tar.addfile(info, io.BytesIO(payload))


def write_tar(path: Path, samples: list[dict]) -> None:
    """``samples``: dicts with key, ext, image (bytes), caption; members in key order."""
    with tarfile.open(path, "w") as tar:
        for s in sorted(samples, key=lambda s: s["key"]):
            add_member(tar, f"{s['key']}.{s['ext']}", s["image"])
            add_member(tar, f"{s['key']}.txt", s["caption"].encode("utf-8"))
            meta = {"key": s["key"], "caption": s["caption"], "clip_score": 0.3}
            add_member(tar, f"{s['key']}.json", json.dumps(meta).encode("utf-8"))


def square_samples(start: int, count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    names = sorted(COLOURS)
    samples = []
    for i in range(start, start + count):
        name = names[i % len(names)]
        fmt, ext = ("PNG", "png") if i % 10 == 9 else ("JPEG", "jpg")
        samples.append({"key": f"{i:08x}", "ext": ext, "caption": f"a {name} square",
                        "image": encode(square_image(COLOURS[name], rng), fmt)})
    return samples


def write_shards(root: Path, shards: list[list[dict]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for index, samples in enumerate(shards):
        name = f"{index:05d}.tar"
        write_tar(root / name, samples)
        sizes[name] = len(samples)
    (root / "sizes.json").write_text(json.dumps(sizes, indent=1) + "\n")
    return root


@pytest.fixture
def shard_dir(tmp_path: Path) -> Path:
    """2 shards x 40 coloured squares captioned "a <colour> square" (jpg and some png)."""
    return write_shards(tmp_path / "shards", [square_samples(0, SHARD_SIZE, seed=1),
                                              square_samples(SHARD_SIZE, SHARD_SIZE, seed=2)])


@pytest.fixture(scope="session")
def tiny_model():
    """(model, preprocess_train, preprocess_val, tokenizer) of configs/models/wit-tiny.json."""
    from trainer.model import create_model

    return create_model(TINY_MODEL)
