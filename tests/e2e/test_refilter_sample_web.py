"""End to end: ``wit refilter`` on the curated sample web (issue 5's round trip).

Refilter with the source's own threshold reproduces the source byte for byte;
a keep_fraction tightens it; a looser threshold cannot bring back what the source
dropped, and says so. Also checks what the refilter reads: embeddings and pHashes.
"""

import json

import pytest

from pipeline import shard_format
from pipeline.build import Inputs
from pipeline.cli import main
from pipeline.config import CONFIG_DIR, load_config
from pipeline.refilter import RefilterError, RefilterRequest, run_refilter, stats_without_provenance
from pipeline.run import run_curation
from pipeline.sample import SampleServer, generate_site
from transforms.embeddings import EMBEDDINGS_DIR, as_matrix, read_embeddings


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("refilter")
    cfg = load_config([CONFIG_DIR / "sample.yaml"], ["fetch.allow_private_networks=true"])
    with SampleServer(generate_site(seed=0)) as server:
        seeds = root / "seeds.txt"
        seeds.write_text("\n".join(server.seed_urls) + "\n")
        stats = run_curation(cfg, Inputs(seeds_file=str(seeds)), str(root / "src"))
    return root, root / "src", stats


def _files(directory):
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and p.relative_to(directory).as_posix() not in shard_format.VOLATILE_FILES}


def test_source_has_embeddings_and_phashes(source):
    _, out, stats = source
    table = read_embeddings(str(out))
    scored = stats["kept"] + stats["rejected_by_reason"]["clip.below_threshold"]
    assert table.num_rows == scored  # every image that reached the threshold
    vectors = as_matrix(table.column("image_embedding"))
    assert vectors.shape[0] == scored and abs(float((vectors[0] ** 2).sum()) - 1.0) < 1e-2
    samples = shard_format.read_samples_table(str(out / "shards")).to_pylist()
    assert all(len(row["phash"]) == 16 and row["clip_model"] == "wit-tiny/wit-tiny-scorer.pt" for row in samples)
    assert stats["thresholds"]["near_hamming"] == 8 and stats["rejected_by_reason"]["dedupe.image_near"] == 15


def test_refilter_with_the_source_threshold_is_byte_identical(source):
    root, src, stats = source
    assert main(["refilter", str(src), "--min-score", "0.55", "--output", str(root / "same")]) == 0
    new = root / "same"
    for sub in (shard_format.SHARDS_DIR, shard_format.REJECTIONS_DIR, EMBEDDINGS_DIR):
        assert _files(src / sub) == _files(new / sub), sub
    assert (src / shard_format.RUN_CONFIG_FILE).read_bytes() == (new / shard_format.RUN_CONFIG_FILE).read_bytes()
    new_stats = json.loads((new / shard_format.STATS_FILE).read_text())
    assert stats_without_provenance(new_stats) == stats_without_provenance(stats)
    assert new_stats["refilter"]["unrestorable"] == 0 and new_stats["refilter"]["source_kept"] == stats["kept"]


def test_keep_fraction_tightens_and_accounts(source):
    root, src, stats = source
    new = run_refilter(str(src), str(root / "half"), RefilterRequest(keep_fraction=0.5))
    pool = stats["kept"] + stats["rejected_by_reason"]["clip.below_threshold"]
    assert abs(new["kept"] - pool / 2) <= 2 and new["accounting_ok"]
    assert new["pairs_extracted"] == stats["pairs_extracted"] and new["thresholds"]["clip_keep_fraction"] == 0.5
    assert new["thresholds"]["clip_min_score"] > 0.55 == stats["thresholds"]["clip_min_score"]
    kept = shard_format.read_samples_table(str(root / "half" / "shards")).column("clip_score").to_pylist()
    assert len(kept) == new["kept"] and min(kept) >= new["thresholds"]["clip_min_score"] - 1e-6
    assert shard_format.read_rejections_table(str(root / "half")).num_rows == new["rejected"]


def test_looser_threshold_cannot_restore(source):
    root, src, stats = source
    new = run_refilter(str(src), str(root / "loose"), RefilterRequest(min_score=-1.0))
    assert new["kept"] == stats["kept"] and new["thresholds"]["clip_min_score"] == 0.55
    assert new["refilter"]["requested_clip_min_score"] == -1.0
    assert new["refilter"]["unrestorable"] == stats["rejected_by_reason"]["clip.below_threshold"]


def test_refilter_refuses_bad_requests(source, tmp_path):
    root, src, _ = source
    with pytest.raises(RefilterError, match="not both"):
        run_refilter(str(src), str(tmp_path / "x"), RefilterRequest(min_score=0.5, keep_fraction=0.5))
    with pytest.raises(RefilterError, match="not a finished"):
        run_refilter(str(tmp_path), str(tmp_path / "y"), RefilterRequest(min_score=0.5))
    with pytest.raises(RefilterError, match="must differ"):
        run_refilter(str(src), str(src), RefilterRequest(min_score=0.5))
    assert main(["refilter", str(src), "--keep-fraction", "1.5", "--output", str(tmp_path / "z")]) == 2
