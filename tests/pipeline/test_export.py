"""pipeline.export: DataComp subset files (uids as u8,u8, sorted) and open_clip model configs.

The end-to-end test curates a pool parquet in DataComp's column layout from a loopback server
with configs/datacomp_basic.yaml and exports the kept uids (~20 s: a real Beam run); one more
runs stock open_clip_train on the result (~90 s on 2 busy cores, most of it imports). Both slow.
"""

import io
import json
import os
import random
import subprocess
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline import shard_format
from pipeline.cli import main
from pipeline.export import (ExportError, export_datacomp, export_open_clip_config, hex_uids, read_subset,
                             subset_array, uid_array)

REPO = Path(__file__).resolve().parents[2]
EDGES = ["0" * 32, "f" * 32, "0000000000000001" + "0" * 16, "0" * 16 + "ffffffffffffffff",
         "ffffffffffffffff" + "0" * 16, "8000000000000000" + "0" * 15 + "1"]


def _uid(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


# ---- the u8,u8 layout -----------------------------------------------------------------------------

def test_uid_array_is_datacomps_layout():
    array = uid_array(EDGES)
    assert array.dtype == np.dtype("u8,u8") and array.dtype.descr == [("f0", "<u8"), ("f1", "<u8")]
    # as DataComp's baselines compute it: int(uid, 16) // 2**64 and % 2**64
    assert array.tolist() == [(int(u, 16) // 2 ** 64, int(u, 16) % 2 ** 64) for u in EDGES]
    assert hex_uids(array) == EDGES


def test_subset_is_sorted_as_128_bit_numbers_and_each_uid_once():
    rng = random.Random(7)
    uids = [_uid(rng) for _ in range(500)] + EDGES
    given_order = uids + uids[:50]  # repeats
    rng.shuffle(given_order)
    array = subset_array(given_order)
    assert hex_uids(array) == sorted(set(uids), key=lambda u: int(u, 16))
    assert len(array) == len(set(uids))


@pytest.mark.fuzz
@given(st.lists(st.integers(0, 2 ** 128 - 1), max_size=40))
def test_uid_round_trip_exactly(numbers):
    uids = [f"{n:032x}" for n in numbers]
    assert hex_uids(uid_array(uids)) == uids
    assert hex_uids(subset_array(uids)) == [f"{n:032x}" for n in sorted(set(numbers))]


@pytest.mark.parametrize("bad", [["ab" * 15, "ab" * 17],  # 30 + 34 digits: the same 64 digits, misaligned
                                 ["g" * 32], [" " + "a" * 31], ["a" * 32 + "\n"], ["０" * 32]])
def test_uid_array_refuses_what_is_not_32_hex_digits(bad):
    with pytest.raises(ValueError, match="not a 32-hex-digit uid"):
        uid_array(bad)


# ---- export_datacomp on shards written by hand -----------------------------------------------------

def _shards(out: Path, batches: list[list]) -> None:
    """One sidecar parquet per batch of uids (None: a sample without one), as WriteShards writes them."""
    (out / shard_format.SHARDS_DIR).mkdir(parents=True)
    for n, uids in enumerate(batches):
        rows = [{"key": f"{n:02d}{i:06d}", "url": f"http://h/{n}/{i}", "caption": "c", "uid": u, "shard": f"{n:05d}"}
                for i, u in enumerate(uids)]
        data = shard_format.parquet_bytes(rows, shard_format.SAMPLE_SCHEMA)
        (out / shard_format.SHARDS_DIR / f"{n:05d}.parquet").write_bytes(data)


def test_export_round_trips_the_kept_uids(tmp_path):
    rng = random.Random(3)
    batches = [[_uid(rng) for _ in range(300)] for _ in range(3)] + [[]]
    _shards(tmp_path / "out", batches)
    done = export_datacomp(str(tmp_path / "out"), str(tmp_path / "subset.npy"))
    array = read_subset(str(tmp_path / "subset.npy"))
    kept = [u for b in batches for u in b]
    assert hex_uids(array) == sorted(kept, key=lambda u: int(u, 16))
    assert (done.kept, done.written, done.missing, done.duplicates) == (900, 900, 0, 0)
    assert np.load(tmp_path / "subset.npy").dtype == np.dtype("u8,u8")
    assert [p.name for p in tmp_path.iterdir()] != [] and not list(tmp_path.glob("*.tmp-*"))


def test_datacomp_style_lookup_finds_every_kept_uid_and_no_other(tmp_path):
    """What a reader of the subset does: binary search for a pool uid's (high, low) pair."""
    rng = random.Random(5)
    kept, other = [_uid(rng) for _ in range(200)], [_uid(rng) for _ in range(200)]
    _shards(tmp_path / "out", [kept])
    export_datacomp(str(tmp_path / "out"), str(tmp_path / "s.npy"))
    subset = np.load(tmp_path / "s.npy")

    def member(uid: str) -> bool:
        x = np.array([(int(uid[:16], 16), int(uid[16:], 16))], np.dtype("u8,u8"))
        i = int(np.searchsorted(subset, x)[0])
        return i < len(subset) and subset[i] == x[0]

    assert all(member(u) for u in kept) and not any(member(u) for u in other)


def test_samples_without_a_uid_are_an_error_unless_skipped(tmp_path):
    _shards(tmp_path / "out", [[EDGES[0], None, EDGES[1], "", EDGES[0]]])
    dest = tmp_path / "s.npy"
    with pytest.raises(ExportError, match=r"2 of 5 kept samples have no uid \(e\.g\. key 00000001\)"):
        export_datacomp(str(tmp_path / "out"), str(dest))
    assert not dest.exists() and not list(tmp_path.glob("*.tmp-*"))
    done = export_datacomp(str(tmp_path / "out"), str(dest), skip_missing=True)
    assert (done.kept, done.written, done.missing, done.duplicates) == (5, 2, 2, 1)
    assert hex_uids(read_subset(str(dest))) == [EDGES[0], EDGES[1]]


def test_a_uid_that_is_not_datacomps_is_an_error(tmp_path):
    _shards(tmp_path / "out", [[EDGES[0], "ab" * 15], ["ab" * 17]])
    with pytest.raises(ExportError, match="not DataComp's format"):
        export_datacomp(str(tmp_path / "out"), str(tmp_path / "s.npy"))


def test_shards_without_a_uid_column_and_non_outputs_are_errors(tmp_path):
    (tmp_path / "old" / "shards").mkdir(parents=True)
    pq.write_table(pa.table({"key": ["a"], "url": ["u"]}), tmp_path / "old" / "shards" / "00000.parquet")
    with pytest.raises(ExportError, match="has no uid column"):
        export_datacomp(str(tmp_path / "old"), str(tmp_path / "s.npy"))
    with pytest.raises(ExportError, match="not a wit curate output"):
        export_datacomp(str(tmp_path / "nothing"), str(tmp_path / "s.npy"))


def test_read_subset_checks_dtype_and_order(tmp_path):
    np.save(tmp_path / "unsorted.npy", uid_array([EDGES[1], EDGES[0]]))
    np.save(tmp_path / "wrong.npy", np.arange(3, dtype=np.uint64))
    with pytest.raises(ExportError, match="not sorted"):
        read_subset(str(tmp_path / "unsorted.npy"))
    with pytest.raises(ExportError, match="dtype"):
        read_subset(str(tmp_path / "wrong.npy"))


def test_cli_export_datacomp(tmp_path, capsys):
    _shards(tmp_path / "out", [[EDGES[2], None]])
    dest = str(tmp_path / "s.npy")
    assert main(["export", "datacomp", str(tmp_path / "out"), "--output", dest]) == 2
    assert "1 of 2 kept samples have no uid" in capsys.readouterr().err
    assert main(["export", "datacomp", str(tmp_path / "out"), "--output", dest, "--skip-missing"]) == 0
    assert f"{dest}: 1 uids of 2 kept samples (1 without a uid left out" in capsys.readouterr().out
    assert hex_uids(read_subset(dest)) == [EDGES[2]]


# ---- open_clip model config -------------------------------------------------------------------------

@pytest.mark.slow  # importing open_clip: ~5 s alone, ~30 s on 2 busy cores
def test_open_clip_config_is_found_by_stock_open_clip(tmp_path, capsys):
    import open_clip

    ours = json.loads((REPO / "configs" / "models" / "wit-tiny.json").read_text())
    assert main(["export", "open-clip-config", str(tmp_path / "oc")]) == 0
    assert f"--model local-dir:{tmp_path / 'oc'}" in capsys.readouterr().out
    assert json.loads((tmp_path / "oc" / "open_clip_config.json").read_text()) == {"model_cfg": ours}
    model = open_clip.create_model(f"local-dir:{tmp_path / 'oc'}")
    assert model.visual.image_size == (64, 64) and model.text_projection.shape[1] == ours["embed_dim"]
    tokens = open_clip.get_tokenizer(f"local-dir:{tmp_path / 'oc'}")(["a red fox"])
    assert tokens.shape == (1, ours["text_cfg"]["context_length"])
    # a .json destination: the plain model JSON, named by its file stem
    path, model_arg = export_open_clip_config("wit-tiny", str(tmp_path / "my-tiny.json"))
    assert json.loads(Path(path).read_text()) == ours and model_arg == "my-tiny"
    with pytest.raises(ExportError, match="not found"):
        export_open_clip_config("no-such-model", str(tmp_path / "x"))


# ---- end to end: a DataComp-layout pool through wit curate --url-list, then export -----------------

POOL = [  # (uid, image path, served size, text, expected outcome)
    ("1f" * 16, "/fox.jpg", (300, 250), "a red fox in the snow", "kept"),
    ("00" * 8 + "0a" * 8, "/dogs.jpg", (200, 600), "two dogs on a sunny beach", "kept"),  # side 200, aspect 3.0
    ("e3" * 16, "/bird.jpg", (199, 400), "a small bird on a branch", "image.too_small"),
    ("7c" * 16, "/bus.jpg", (601, 200), "an old red bus in London", "image.bad_aspect"),  # 3.005
    ("5a" * 16, "/cat.jpg", (300, 300), "two words", "caption.too_short"),
    ("6b" * 16, "/cat.jpg", (300, 300), "a b c", "caption.too_short"),  # 3 words, 5 characters
    ("8d" * 16, "/cat.jpg", (300, 300), "Die Katze schläft auf dem Sofa im Wohnzimmer", "caption.language"),
    ("9e" * 16, "/gone.jpg", None, "a cat sleeping on a sofa", "fetch.http_4xx"),
    (None, "/cat.jpg", (300, 300), "a cat sleeping on a sofa", "kept"),  # a pool row without a uid
]


def _jpeg(size, seed: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (40 * seed % 256, 255 - 30 * seed % 256, 90)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def pool_server():
    images = {path: _jpeg(size, i) for i, (_, path, size, _, _) in enumerate(POOL) if size}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            body = images.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "image/jpeg" if body else "text/plain")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def curated(pool_server, tmp_path_factory):
    """wit curate of a DataComp-layout pool parquet with configs/datacomp_basic.yaml."""
    work = tmp_path_factory.mktemp("datacomp")
    rng = random.Random(11)
    n = len(POOL)
    pq.write_table(pa.table({
        "uid": [u for u, *_ in POOL],
        "url": [pool_server + path for _, path, *_ in POOL],
        "text": [text for *_, text, _ in POOL],
        "original_width": [s[0] if s else 0 for _, _, s, *_ in POOL],
        "original_height": [s[1] if s else 0 for _, _, s, *_ in POOL],
        "clip_b32_similarity_score": pa.array([rng.random() for _ in range(n)], pa.float32()),
        "clip_l14_similarity_score": pa.array([rng.random() for _ in range(n)], pa.float32()),
        "face_bboxes": pa.array([[] for _ in range(n)], pa.list_(pa.list_(pa.float64()))),
        "sha256": [f"{rng.getrandbits(256):064x}" for _ in range(n)],
    }), work / "pool.parquet")
    out = work / "out"
    argv = ["curate", "--url-list", str(work / "pool.parquet"), "--caption-col", "text",
            "--config", "datacomp_basic.yaml", "--output", str(out), "--allow-private-networks",
            "--direct_num_workers=1"]
    assert main(argv) == 0
    return out


@pytest.mark.slow
def test_curate_keeps_what_datacomps_basic_filter_keeps(curated):
    stats = json.loads((curated / "stats.json").read_text())
    assert stats["accounting_ok"] and stats["pairs_extracted"] == len(POOL)
    rejected = shard_format.read_rejections_table(str(curated)).to_pylist()
    samples = shard_format.read_samples_table(str(curated / "shards")).to_pylist()
    got = sorted([(r["caption"], r["reason"]) for r in rejected] + [(r["caption"], "kept") for r in samples])
    assert got == sorted((text, expected) for *_, text, expected in POOL)
    assert sorted(r["uid"] or "" for r in samples) == sorted(u or "" for u, *_, e in POOL if e == "kept")


@pytest.mark.slow
def test_tar_json_carries_the_uid(curated):
    metas = []
    for tar_path in shard_format.list_tars(str(curated / "shards")):
        with tarfile.open(tar_path) as tar:
            metas += [json.load(tar.extractfile(m)) for m in tar.getmembers() if m.name.endswith(".json")]
    assert sorted(m.get("uid") or "" for m in metas) == sorted(u or "" for u, *_, e in POOL if e == "kept")


@pytest.mark.slow
def test_export_gives_exactly_the_kept_uids(curated, tmp_path, capsys):
    dest = str(tmp_path / "subset.npy")
    assert main(["export", "datacomp", str(curated), "--output", dest]) == 2  # one kept sample has no uid
    assert not os.path.exists(dest)
    assert main(["export", "datacomp", str(curated), "--output", dest, "--skip-missing"]) == 0
    kept = [u for u, *_, e in POOL if e == "kept" and u]
    assert hex_uids(read_subset(dest)) == sorted(kept, key=lambda u: int(u, 16))


@pytest.mark.slow
def test_open_clip_train_runs_on_the_shards_with_the_exported_config(curated, tmp_path):
    """The README recipe: stock open_clip_train, --model local-dir: from wit export open-clip-config."""
    assert main(["export", "open-clip-config", str(tmp_path / "oc")]) == 0
    tars = shard_format.list_tars(str(curated / "shards"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    cmd = [sys.executable, "-m", "open_clip_train.main", "--model", f"local-dir:{tmp_path / 'oc'}",
           "--train-data", tars[0], "--dataset-type", "webdataset", "--batch-size", "1", "--epochs", "1",
           "--workers", "1", "--precision", "fp32", "--device", "cpu", "--logs", str(tmp_path / "logs"),
           "--name", "recipe", "--log-every-n-steps", "1", "--lr", "1e-3", "--warmup", "1", "--save-frequency", "0"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (tmp_path / "logs" / "recipe" / "out.log").read_text()
    assert "Train Epoch: 0" in log and "Loss:" in log
