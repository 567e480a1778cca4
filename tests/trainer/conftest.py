"""Trainer fixtures: small deterministic shards of coloured squares, the tiny model config and
a micro one (1-layer towers, width 32: the fast stand-in where model quality is not the point).

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
import torch
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# One intra-op thread: on a shared 2-core machine torch's second OpenMP thread spins at barriers
# while the core is busy elsewhere, making small ops 5-40x slower; one thread is also what
# torchrun gives each rank. Subprocesses (torchrun, open_clip_train) inherit the variable.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

REPO = Path(__file__).resolve().parents[2]
TINY_MODEL = str(REPO / "configs" / "models" / "wit-tiny.json")
MICRO_MODEL_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16,
                   "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2,
                 "layers": 1},
}
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
            meta = {"key": s["key"], "caption": s["caption"],
                    "clip_score": s.get("clip_score", 0.3)}
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


@pytest.fixture(scope="session")
def micro_model_path(tmp_path_factory) -> str:
    """Path of the micro model JSON (open_clip name ``wit-test-micro``)."""
    path = tmp_path_factory.mktemp("models") / "wit-test-micro.json"
    path.write_text(json.dumps(MICRO_MODEL_CFG))
    return str(path)


@pytest.fixture(scope="session")
def micro_model(micro_model_path):
    from trainer.model import create_model

    return create_model(micro_model_path)
