"""End to end: the sample web on loopback, curated three times with the bundled scorer.

Asserts the whole outcome map against the manifest, the accounting identity,
sizes.json == tar members == parquet rows, byte-identical reruns (single-process
FnApiRunner vs ``--direct_running_mode=multi_processing --direct_num_workers=2``), the same
files with the image bytes carried inline (``output.spill_images=false``), and that the
trainer takes a step on the output.
"""

import json
import os
import tarfile
from collections import Counter

import pytest

from pipeline import shard_format
from pipeline.build import Inputs
from pipeline.config import CONFIG_DIR, load_config
from pipeline.run import run_curation
from pipeline.sample import SampleServer, generate_site, manifest_by_pair

SCORER = CONFIG_DIR.parent / "models" / "wit-tiny-scorer.pt"
MULTI_PROCESS = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    if not SCORER.exists():
        pytest.fail(f"bundled scorer missing: {SCORER} (make sample-model)")
    site = generate_site(seed=0)
    root = tmp_path_factory.mktemp("e2e")
    cfg = load_config([CONFIG_DIR / "sample.yaml"], ["fetch.allow_private_networks=true"])
    with SampleServer(site) as server:
        seeds = root / "seeds.txt"
        seeds.write_text("\n".join(server.seed_urls) + "\n")
        stats = run_curation(cfg, Inputs(seeds_file=str(seeds)), str(root / "a"))
        # The rerun goes on another runner set-up: two worker processes, other bundles.
        run_curation(cfg, Inputs(seeds_file=str(seeds)), str(root / "b"), MULTI_PROCESS)
        # And once with the image bytes carried inline instead of spilled to OUT/_work/images.
        inline = load_config([CONFIG_DIR / "sample.yaml"], ["fetch.allow_private_networks=true",
                                                            "output.spill_images=false"])
        run_curation(inline, Inputs(seeds_file=str(seeds)), str(root / "inline"))
        base = server.base_url
    return {"site": site, "root": root, "out": root / "a", "stats": stats, "base": base}


def _outcomes(out, base):
    """{(page_path, image_path): 'kept' | reason} from the output files."""
    strip = lambda url: url[len(base):] if url.startswith(base) else url  # noqa: E731
    got = {}
    for row in shard_format.read_samples_table(str(out / "shards")).to_pylist():
        got[(strip(row["page_url"]), strip(row["url"]))] = "kept"
    for row in shard_format.read_rejections_table(str(out)).to_pylist():
        pair = (strip(row["page_url"]), strip(row["image_url"]))
        assert pair not in got, f"pair in two places: {pair}"
        got[pair] = row["reason"]
    return got


def test_outcome_map_equals_manifest(curated):
    expected = {pair: entry.expected for pair, entry in manifest_by_pair(curated["site"]).items()}
    got = _outcomes(curated["out"], curated["base"])
    wrong = {p: (expected.get(p), got.get(p)) for p in set(expected) | set(got) if expected.get(p) != got.get(p)}
    assert not wrong, f"{len(wrong)} pairs differ (expected, got): {sorted(wrong.items())[:10]}"
    kinds = Counter(entry.kind for entry in curated["site"].manifest)
    assert kinds["matched"] > 100 and kinds["mismatched"] > 10


def test_accounting_identity_and_stats(curated):
    stats = curated["stats"]
    assert stats["pairs_extracted"] == stats["kept"] + stats["rejected"]
    assert stats["accounting_ok"]
    assert stats["pairs_extracted"] == len(curated["site"].manifest)
    rejections = shard_format.read_rejections_table(str(curated["out"]))
    assert rejections.num_rows == stats["rejected"]
    assert Counter(rejections.column("reason").to_pylist()) == Counter(stats["rejected_by_reason"])
    funnel = stats["funnel"]
    assert funnel[0]["in"] == stats["pairs_extracted"] and funnel[-1]["out"] == stats["kept"]
    assert stats["thresholds"]["clip_min_score"] == pytest.approx(0.55)
    assert (curated["out"] / "run_config.yaml").exists()


def test_sizes_tar_members_and_parquet_agree(curated):
    shards = curated["out"] / "shards"
    sizes = shard_format.read_sizes(str(shards))
    assert len(sizes) >= 2
    total = 0
    for tar_path in shard_format.list_tars(str(shards)):
        name = os.path.basename(tar_path)
        with tarfile.open(tar_path) as tar:
            members = tar.getnames()
        keys = {m.split(".")[0] for m in members}
        assert len(members) == 3 * len(keys) == 3 * sizes[name]
        total += sizes[name]
    table = shard_format.read_samples_table(str(shards))
    assert table.num_rows == total == curated["stats"]["kept"]
    scores = table.column("clip_score").to_pylist()
    assert all(s is not None and s >= 0.55 for s in scores)


def test_rerun_is_byte_identical(curated):
    """Single-process FnApiRunner and 2 worker processes write the same bytes (shards and all the rest)."""
    a, b = curated["root"] / "a", curated["root"] / "b"
    names = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file())
    assert names == sorted(str(p.relative_to(b)) for p in b.rglob("*") if p.is_file())
    assert any(n.startswith("shards/") for n in names) and any(n.startswith("rejections/") for n in names)
    assert set(shard_format.VOLATILE_FILES) <= set(names)  # run_info.json: the date and duration differ
    for name in (n for n in names if n not in shard_format.VOLATILE_FILES):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_spilled_images_give_the_same_output_as_inline_ones(curated):
    """transforms/image_store.py changes where the bytes wait, not what is written; OUT/_work goes."""
    a, inline = curated["root"] / "a", curated["root"] / "inline"
    for sub in ("shards", "rejections", "embeddings"):
        names = sorted(str(p.relative_to(a)) for p in (a / sub).rglob("*") if p.is_file())
        assert names and names == sorted(str(p.relative_to(inline)) for p in (inline / sub).rglob("*") if p.is_file())
        for name in names:
            assert (a / name).read_bytes() == (inline / name).read_bytes(), name
    assert not (a / "_work").exists()


def test_sample_json_metadata(curated):
    tar_path = shard_format.list_tars(str(curated["out"] / "shards"))[0]
    with tarfile.open(tar_path) as tar:
        jsons = [m for m in tar.getmembers() if m.name.endswith(".json")]
        meta = json.loads(tar.extractfile(jsons[0]).read())
    for field in ("key", "url", "caption", "page_url", "clip_score", "sha256", "width", "height", "page_title"):
        assert field in meta


def test_one_trainer_step_on_the_output(curated, tmp_path):
    from trainer.config import TrainConfig
    from trainer.loop import train

    cfg = TrainConfig(model=str(CONFIG_DIR / "models" / "wit-tiny.json"),
                      shards=(str(curated["out"] / "shards"),), steps=1, batch_size=8,
                      output=str(tmp_path / "train"), save_every=0, shuffle_buffer=16)
    result = train(cfg)
    assert result.steps == 1 and result.final_loss > 0
    assert os.path.exists(result.checkpoint_path)
