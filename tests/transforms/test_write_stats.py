"""transforms.write_stats: values known only after the run (the CLIP threshold used) reach stats.json."""

import json

import apache_beam as beam

from tests.conftest import local_test_pipeline
from transforms.write_stats import WriteStats, with_values


def test_with_values_sets_without_mutating():
    extra = {"thresholds": {"clip_min_score": 0.28, "image_min_side": 32}, "stages": ["A"]}
    merged = with_values(extra, [("thresholds", "clip_min_score", 0.31), ("refilter", "unrestorable", 2)])
    assert merged["thresholds"] == {"clip_min_score": 0.31, "image_min_side": 32}
    assert merged["refilter"] == {"unrestorable": 2} and extra["thresholds"]["clip_min_score"] == 0.28


def test_stats_json_takes_the_side_input(tmp_path):
    events = [("pairs",), ("pairs",), ("kept",), ("drop", "ClipThreshold", "clip.below_threshold")]
    extra = {"stages": ["ClipThreshold"], "thresholds": {"clip_min_score": None}}
    with local_test_pipeline() as p:
        values = p | "Values" >> beam.Create([("thresholds", "clip_min_score", 0.4321)])
        _ = p | "Events" >> beam.Create(events) | WriteStats(str(tmp_path), ["ClipThreshold"], extra, values)
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["thresholds"]["clip_min_score"] == 0.4321 and stats["accounting_ok"]
