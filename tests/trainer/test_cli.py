"""trainer.cli: `train` and `eval` subcommands end to end on tiny shards."""

import argparse
import json

import pytest

from tests.trainer.conftest import TINY_MODEL
from trainer.cli import add_eval_parser, add_train_parser, main, parse_set_values


def test_parsers_register_on_a_host_cli():
    parser = argparse.ArgumentParser(prog="wit")
    subparsers = parser.add_subparsers(dest="command")
    add_train_parser(subparsers)
    add_eval_parser(subparsers)
    args = parser.parse_args(["train", "--shards", "a", "--shards", "b", "--set", "lr=1e-4",
                              "--batch-size", "8"])
    assert args.shards == ["a", "b"] and args.set_values == ["lr=1e-4"] and args.batch_size == 8
    assert args.func is args.handler and callable(args.handler)


def test_parse_set_values():
    assert parse_set_values(["a=1", " b = x=y "]) == {"a": "1", "b": "x=y"}
    with pytest.raises(ValueError):
        parse_set_values(["novalue"])


def test_train_then_eval(shard_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--shards", str(shard_dir), "--output", str(out), "--steps", "2",
                 "--batch-size", "8", "--model", TINY_MODEL, "--set", "warmup_steps=1",
                 "--set", "device=cpu"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 2 and summary["checkpoint"].endswith("final.pt")

    code = main(["eval", "--checkpoint", summary["checkpoint"], "--model", TINY_MODEL,
                 "--shards", str(shard_dir), "--batch-size", "32", "--device", "cpu"])
    assert code == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["samples"] == 80 and metrics["skipped_samples"] == 0
    assert -1 <= metrics["mean_clip_score"] <= 1
    assert 0 <= metrics["image_to_text_r1"] <= metrics["image_to_text_r5"] <= 1


def test_bad_config_key_exits_2(shard_dir, capsys):
    assert main(["train", "--shards", str(shard_dir), "--set", "nope=1"]) == 2
    assert "unknown train config key" in capsys.readouterr().err


def test_eval_missing_checkpoint_exits_2(shard_dir, capsys):
    assert main(["eval", "--checkpoint", "/nonexistent/final.pt", "--model", TINY_MODEL,
                 "--shards", str(shard_dir)]) == 2
    assert "Supply a local checkpoint" in capsys.readouterr().err
