"""trainer.cli: `train` (with --resume) and `eval` (retrieval + zero-shot, JSON) end to end."""

import argparse
import json

import pytest
from PIL import Image

from tests.trainer.conftest import COLOURS, TINY_MODEL
from trainer.cli import add_eval_parser, add_train_parser, main, parse_set_values


def test_parsers_register_on_a_host_cli():
    parser = argparse.ArgumentParser(prog="wit")
    subparsers = parser.add_subparsers(dest="command")
    add_train_parser(subparsers)
    add_eval_parser(subparsers)
    args = parser.parse_args(["train", "--shards", "a", "--shards", "b", "--set", "lr=1e-4",
                              "--batch-size", "8", "--resume"])
    assert args.shards == ["a", "b"] and args.set_values == ["lr=1e-4"] and args.batch_size == 8
    assert args.resume == "latest" and args.func is args.handler and callable(args.handler)
    args = parser.parse_args(["eval", "--pretrained", "laion2b_s34b_b79k", "--model", "ViT-B-32",
                              "--zeroshot", "a.yaml", "--zeroshot", "b.yaml"])
    assert args.checkpoint == "laion2b_s34b_b79k" and args.zeroshot == ["a.yaml", "b.yaml"]


def test_parse_set_values():
    assert parse_set_values(["a=1", " b = x=y "]) == {"a": "1", "b": "x=y"}
    with pytest.raises(ValueError):
        parse_set_values(["novalue"])


def test_train_resume_then_eval(shard_dir, micro_model_path, tmp_path, capsys):
    out = tmp_path / "run"
    common = ["train", "--shards", str(shard_dir), "--output", str(out), "--batch-size", "8",
              "--model", micro_model_path, "--set", "warmup_steps=1", "--set", "device=cpu",
              "--set", "tensorboard=false"]
    assert main(common + ["--steps", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 2 and summary["checkpoint"].endswith("final.pt")
    assert main(common + ["--steps", "3", "--resume"]) == 0  # extend the run by a step
    summary = json.loads(capsys.readouterr().out)
    assert summary["start_step"] == 2 and summary["steps"] == 3

    images = tmp_path / "heldout"
    for name in ("red", "green", "blue"):
        (images / name).mkdir(parents=True)
        Image.new("RGB", (32, 32), COLOURS[name]).save(images / name / "0.png")
    task = tmp_path / "colours.yaml"
    task.write_text("classes: [red, green, blue]\ntemplates: ['a {} square']\n")
    results_file = tmp_path / "results.json"
    # no --model: read from the run's run_config.yaml beside the checkpoint
    code = main(["eval", "--checkpoint", summary["checkpoint"], "--shards", str(shard_dir),
                 "--zeroshot", str(task), "--images", str(images), "--batch-size", "32",
                 "--device", "cpu", "--json", str(results_file)])
    assert code == 0
    results = json.loads(capsys.readouterr().out)
    assert results == json.loads(results_file.read_text())
    assert results["model"] == micro_model_path
    retrieval = results["retrieval"]
    assert retrieval["samples"] == 80 and retrieval["skipped_samples"] == 0
    assert -1 <= retrieval["mean_clip_score"] <= 1
    assert 0 <= retrieval["image_to_text_r1"] <= retrieval["image_to_text_r5"] <= \
        retrieval["image_to_text_r10"] <= 1
    zeroshot = results["zeroshot"]["colours"]
    assert zeroshot["images"] == 3 and 0 <= zeroshot["top1"] <= 1


def test_bad_config_key_exits_2(shard_dir, capsys):
    assert main(["train", "--shards", str(shard_dir), "--set", "nope=1"]) == 2
    assert "unknown train config key" in capsys.readouterr().err


def test_eval_errors_exit_2(shard_dir, tmp_path, capsys):
    assert main(["eval", "--checkpoint", "/nonexistent/final.pt", "--model", TINY_MODEL,
                 "--shards", str(shard_dir)]) == 2
    assert "Supply a local checkpoint" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", "x.pt"]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("classes: [one]\n")
    assert main(["eval", "--checkpoint", "x.pt", "--zeroshot", str(bad)]) == 2
    assert "at least 2 distinct classes" in capsys.readouterr().err
