import pyarrow as pa
import pytest

from pipeline.report import content
from pipeline.report.loader import load_run


@pytest.mark.parametrize("raw,step", [(0.18, 0.2), (0.03, 0.05), (0.021, 0.025), (1.0, 1), (0.0, 0.01)])
def test_nice_step(raw, step):
    assert content.nice_step(raw) == pytest.approx(step)


def test_threshold_rows_count_kept_removed_restored():
    rows = content.threshold_rows(kept=[0.6, 0.7, 0.9], dropped=[0.1, 0.4], current=0.5)
    by_t = {r["threshold"]: r for r in rows}
    assert by_t[0.5] == {"threshold": 0.5, "kept": 3, "removed": 0, "restored": 0, "current": True}
    assert by_t[0.8]["kept"] == 1 and by_t[0.8]["removed"] == 2
    assert by_t[0.1]["kept"] == 5 and by_t[0.1]["restored"] == 2
    assert [r["threshold"] for r in rows] == sorted(r["threshold"] for r in rows)
    assert content.threshold_rows([], [], None) == []


def test_pick_rows_is_seeded_and_bounded(curated):
    run = load_run(str(curated))
    a = content.pick_rows(run.kept, 5, seed=1)
    assert a == content.pick_rows(run.kept, 5, seed=1) and len(a) == 5
    assert a != content.pick_rows(run.kept, 5, seed=2)
    assert len(content.pick_rows(run.kept, 10_000, seed=0)) == run.kept.num_rows
    assert content.pick_rows(run.kept, 0, seed=0) == []


def test_reasons_scores_and_duplicates(curated):
    run = load_run(str(curated))
    rows = content.reason_rows(run)
    assert sum(r.count for r in rows) == run.stats["rejected"]
    assert [r.stage for r in rows] == sorted((r.stage for r in rows), key=run.stats["stages"].index)
    kept, dropped = content.scores(run)
    assert len(kept) == run.kept.num_rows and len(dropped) == run.stats["rejected_by_reason"]["clip.below_threshold"]
    assert min(kept) >= 0.55 > max(dropped)
    groups = content.exact_duplicate_groups(run)
    assert groups and all(g["kept"] is None or g["kept"]["key"] == g["key"] for g in groups)
    assert sum(len(g["copies"]) for g in groups) == sum(
        run.stats["rejected_by_reason"].get(r, 0) for r in content.DUPLICATE_REASONS)
    near = content.near_duplicate_groups(run)
    n_near = run.stats["rejected_by_reason"].get("dedupe.image_near", 0)
    if n_near:  # near-duplicate dedupe ran: groups by the survivor named in detail
        assert sum(len(g["copies"]) for g in near) == n_near
    elif near is not None:  # phash computed, nothing dropped: kept rows sharing a phash
        assert all(g["kept"]["phash"] == c["phash"] for g in near for c in g["copies"])
    assert content.dropped_with_reason(run, "caption").num_rows == sum(
        r.count for r in rows if r.reason.startswith("caption."))
    sizes = content.dropped_image_sizes(run)
    assert sizes and all(w > 0 and h > 0 for w, h in sizes)
    assert "pairs" in content.headline(run) and "kept" in content.headline(run)


def test_img2dataset_duplicates_by_sha256(img2dataset_dir):
    run = load_run(str(img2dataset_dir))
    groups = content.exact_duplicate_groups(run)
    assert len(groups) == 1 and groups[0]["key"] == "000000000" and len(groups[0]["copies"]) == 1


@pytest.mark.parametrize("n,text", [(0, "0 bytes"), (1023, "1023 bytes"), (2048, "2.0 KiB"),
                                    (5 * 1024 ** 2, "5.0 MiB"), (3 * 1024 ** 3, "3.0 GiB")])
def test_human_bytes(n, text):
    assert content.human_bytes(n) == text


def test_near_duplicates_from_kept_phash_or_none(img2dataset_dir):
    run = load_run(str(img2dataset_dir))
    assert content.near_duplicate_groups(run) is None  # img2dataset writes no phash
    run.kept = run.kept.set_column(run.kept.schema.get_field_index("phash"), "phash",
                                   pa.array(["ab", "ab"], pa.string()))
    groups = content.near_duplicate_groups(run)
    assert [(g["key"], [c["key"] for c in g["copies"]]) for g in groups] == [("000000000", ["000000001"])]


@pytest.mark.parametrize("glued, name", [
    ("configs/models/wit-tiny.json/models/wit-tiny-scorer.pt", "wit-tiny · wit-tiny-scorer.pt"),
    ("/abs/configs/models/wit-tiny.json//abs/models/w.pt", "wit-tiny · w.pt"),
    ("ViT-B-32/laion2b_s34b_b79k", "ViT-B-32 · laion2b_s34b_b79k"),
    ("ViT-B-32//weights/dir/open_clip_model.safetensors", "ViT-B-32 · open_clip_model.safetensors"),
    (None, None),
])
def test_readable_scorer_from_older_stats(glued, name):
    assert content.readable_scorer(glued) == name


@pytest.mark.parametrize("seconds, text", [(None, "–"), (3.25, "3.2 s"), (75, "1 min 15 s"), (3 * 3600 + 61, "3 h 01 min")])
def test_human_duration(seconds, text):
    assert content.human_duration(seconds) == text


def test_run_rows_prefer_run_info(curated):
    run = load_run(str(curated))
    rows = dict(content.run_rows(run))
    assert rows["scorer"] == "wit-tiny · wit-tiny-scorer.pt" and rows["runner"].startswith("FnApiRunner")
    assert rows["date"] == run.info["date"] and rows["config hash"] == run.stats["config_hash"]
    run.info = {}  # an output written before run_info.json: the glued stats.json name, made readable
    rows = dict(content.run_rows(run))
    assert rows["date"] == rows["duration"] == rows["runner"] == "–" and rows["scorer"] == "wit-tiny · wit-tiny-scorer.pt"


def test_failed_pages_and_opt_out_view(img2dataset_dir):
    run = load_run(str(img2dataset_dir))
    assert content.failed_pages(run)["total"] == 0 and content.opt_out_view(run) is None
    run.stats["pages"] = {"fetched": 3, "failed": 3, "failed_by_reason": {"crawl.error": 1, "crawl.http_4xx": 2},
                          "failed_samples": [{"url": "http://a.test/x", "reason": "crawl.error", "detail": "timeout"}]}
    failed = content.failed_pages(run)
    assert list(failed["by_reason"]) == ["crawl.http_4xx", "crawl.error"] and len(failed["samples"]) == 1
    run.stats["opt_out"] = {"total": {"fetch.noai": 2, "fetch.robots_unavailable": 5}, "domains": 2,
                            "by_domain": {"a.org": {"fetch.robots_unavailable": 5}, "b.org": {"fetch.noai": 2}}}
    view = content.opt_out_view(run)
    assert view.reasons == ["fetch.noai"] and view.total == {"fetch.noai": 2} and view.domains == [("b.org", {"fetch.noai": 2})]
