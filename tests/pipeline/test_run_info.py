"""pipeline/run.py's run_info.json: when, how long and on what a run went, and the scorer's readable name."""

import json
from datetime import datetime, timezone

import pytest

from pipeline import shard_format
from pipeline.config import CONFIG_DIR, load_config
from pipeline.run import OutputExists, prepare_output, run_info, runner_name, scorer_name, write_run_info
from pipeline.runners import make_options


@pytest.mark.parametrize("model, pretrained, name", [
    ("configs/models/wit-tiny.json", "models/wit-tiny-scorer.pt", "wit-tiny · wit-tiny-scorer.pt"),
    ("/abs/configs/models/wit-tiny.json", "/abs/models/wit-tiny-scorer.pt", "wit-tiny · wit-tiny-scorer.pt"),
    ("ViT-B-32", "laion2b_s34b_b79k", "ViT-B-32 · laion2b_s34b_b79k"),
    ("ViT-B-32", "gs://bucket/weights/open_clip.bin", "ViT-B-32 · open_clip.bin"),
    ("ViT-B-32", "", "ViT-B-32"),
])
def test_scorer_name_is_model_and_weights_file(model, pretrained, name):
    assert scorer_name(model, pretrained) == name


@pytest.mark.parametrize("flags, name", [
    ([], "FnApiRunner (local, in_memory)"),
    (["--runner", "DirectRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=4"],
     "FnApiRunner (local, multi_processing x 4)"),
    (["--runner", "DataflowRunner"], "DataflowRunner"),
])
def test_runner_name(flags, name):
    assert runner_name(make_options(flags)) == name


def test_run_info_is_written_beside_the_outputs(tmp_path):
    cfg = load_config([CONFIG_DIR / "sample.yaml"])
    started = datetime(2026, 12, 2, 9, 15, 3, tzinfo=timezone.utc)
    write_run_info(str(tmp_path), run_info(cfg, started, 83.27, "FnApiRunner (local, in_memory)"))
    info = json.loads((tmp_path / shard_format.RUN_INFO_FILE).read_text())
    assert info["date"] == "2026-12-02T09:15:03+00:00" and info["duration_s"] == 83.3
    assert info["runner"] == "FnApiRunner (local, in_memory)"
    assert info["scorer"]["name"] == "wit-tiny · wit-tiny-scorer.pt" and info["scorer"]["model"] == cfg.score.model
    off = load_config([CONFIG_DIR / "sample.yaml"], ["score.enabled=false"])
    assert run_info(off, started, 1.0, "x")["scorer"] is None


def test_run_info_belongs_to_the_run_it_describes(tmp_path):
    (tmp_path / shard_format.RUN_INFO_FILE).write_text("{}")
    with pytest.raises(OutputExists, match="run_info.json"):
        prepare_output(str(tmp_path), overwrite=False)
    prepare_output(str(tmp_path), overwrite=True)
    assert not (tmp_path / shard_format.RUN_INFO_FILE).exists()
