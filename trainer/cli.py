"""``wit train`` and ``wit eval``: argparse registration and handlers.

Input: command-line arguments (``pipeline/cli.py`` registers these subcommands; ``python -m
trainer.cli`` runs them alone, also under ``torchrun``). Output: ``train`` writes checkpoints
and logs under ``--output`` and prints a JSON summary (main rank); ``eval`` prints zero-shot
and retrieval metrics as JSON to stdout (and ``--json FILE``).
Exit codes: 0 ok, 2 bad arguments, config or inputs (message on stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any, Optional, Sequence

import yaml

from trainer.config import DEFAULT_MODEL, load_train_config

logger = logging.getLogger(__name__)


# ``formatter``: a host's help formatter (the wit CLI passes its own, defaults shown); the trainer
# imports nothing of ours but pipeline.shard_format, so it is handed in, never imported.

def add_train_parser(subparsers: Any, formatter: type = argparse.HelpFormatter) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train", help="train a CLIP model on shards", formatter_class=formatter,
        description="Contrastive training of an open_clip model on wit-curator shards.")
    parser.add_argument("--config", metavar="FILE",
                        help="train YAML (e.g. configs/train/tiny.yaml)")
    parser.add_argument("--shards", metavar="DIR", action="append",
                        help="shard directory (repeatable); replaces the config's list")
    parser.add_argument("--output", metavar="DIR", help="run directory")
    parser.add_argument("--steps", type=int, metavar="N", help="optimizer steps (default: the config's steps)")
    parser.add_argument("--batch-size", type=int, metavar="N",
                        help="samples per step (default: the config's batch_size)")
    parser.add_argument("--model", help="open_clip model name or model JSON path")
    parser.add_argument("--resume", nargs="?", const="latest", metavar="CKPT",
                        help="continue a run exactly: OUTPUT/checkpoints/epoch_latest.pt "
                             "(no value) or the given checkpoint")
    parser.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                        dest="set_values", help="override any train config key (repeatable)")
    parser.set_defaults(func=run_train, handler=run_train)  # hosts dispatch on either name
    return parser


def add_eval_parser(subparsers: Any, formatter: type = argparse.HelpFormatter) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "eval", help="zero-shot and retrieval evaluation of a checkpoint or open_clip model",
        formatter_class=formatter,
        description="Zero-shot classification (a YAML of classes and prompt templates, images "
                    "in ROOT/<class>/ folders) and image<->text recall@1/5/10 on held-out "
                    "shards; JSON to stdout. Works on wit train checkpoints and on any "
                    "open_clip model + pretrained tag.")
    parser.add_argument("--checkpoint", "--pretrained", dest="checkpoint", required=True,
                        metavar="FILE|TAG",
                        help="checkpoint (e.g. RUN/checkpoints/final.pt) or open_clip tag")
    parser.add_argument("--model", default=None,
                        help="open_clip model name or model JSON path (default: the run's "
                             f"run_config.yaml beside the checkpoint, else {DEFAULT_MODEL})")
    parser.add_argument("--shards", metavar="DIR", action="append", default=[],
                        help="held-out shard directory for retrieval (repeatable)")
    parser.add_argument("--zeroshot", metavar="YAML", action="append", default=[],
                        help="zero-shot task (e.g. configs/eval/sample_shapes.yaml; repeatable)")
    parser.add_argument("--images", metavar="DIR",
                        help="labelled images ROOT/<class>/*.jpg (overrides the task's images)")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N",
                        help="encoding batch size (default %(default)s)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    parser.add_argument("--json", metavar="FILE", help="also write the results here")
    parser.set_defaults(func=run_eval, handler=run_eval)
    return parser


def parse_set_values(items: Sequence[str]) -> dict[str, str]:
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        values[key.strip()] = value.strip()
    return values


def train_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = parse_set_values(args.set_values)
    flags = {"shards": args.shards, "output": args.output, "steps": args.steps,
             "batch_size": args.batch_size, "model": args.model,
             "resume": getattr(args, "resume", None)}
    overrides.update({k: v for k, v in flags.items() if v is not None})
    return overrides


def _ensure_logging() -> None:
    if not logging.getLogger().handlers:  # pipeline/cli.py may have configured it already
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                            "%(message)s")


def run_train(args: argparse.Namespace) -> int:
    from trainer.loop import train  # torch/open_clip import cost only when training

    _ensure_logging()
    try:
        cfg = load_train_config(args.config, train_overrides(args))
    except (ValueError, FileNotFoundError) as e:
        print(f"wit train: {e}", file=sys.stderr)
        return 2
    if "WORLD_SIZE" not in os.environ and not str(cfg.device).startswith("cuda"):
        from trainer.threads import set_torch_threads

        set_torch_threads()  # the free cores, not one thread per core whatever else runs
    result = train(cfg)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torchrun the main rank reports
    summary = {"steps": result.steps, "start_step": result.start_step,
               "final_loss": round(result.final_loss, 6),
               "first_loss": round(result.losses[0], 6) if result.losses else None,
               "samples_per_s": round(result.samples_per_s, 1),
               "skipped_samples": result.skipped_samples, "checkpoint": result.checkpoint_path,
               "output": cfg.output}
    print(json.dumps(summary, indent=1))
    return 0


def eval_model_name(args: argparse.Namespace) -> str:
    """``--model``, else the model of the run the checkpoint came from, else the default."""
    if args.model:
        return args.model
    run_config = os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), os.pardir,
                              "run_config.yaml")
    if os.path.isfile(args.checkpoint) and os.path.isfile(run_config):
        with open(run_config, encoding="utf-8") as fh:
            model = (yaml.safe_load(fh) or {}).get("model")
        if model:
            return str(model)
    return DEFAULT_MODEL


def evaluate_args(args: argparse.Namespace) -> dict[str, Any]:
    """Every requested evaluation of ``args``, as one JSON-ready dict."""
    from trainer.distributed import resolve_device
    from trainer.eval_tasks import load_task, run_retrieval, run_zero_shot
    from trainer.model import create_model

    if not args.shards and not args.zeroshot:
        raise ValueError("nothing to evaluate: give --shards DIR and/or --zeroshot YAML")
    if args.images and len(args.zeroshot) != 1:
        raise ValueError("--images goes with exactly one --zeroshot task")
    tasks = [load_task(path) for path in args.zeroshot]  # bad YAML fails before the model loads
    model_name = eval_model_name(args)
    model, _, preprocess, tokenizer = create_model(model_name, args.checkpoint,
                                                   device=resolve_device(args.device))
    results: dict[str, Any] = {"model": model_name, "checkpoint": args.checkpoint}
    if args.shards:
        results["retrieval"] = run_retrieval(model, tokenizer, preprocess, args.shards,
                                             batch_size=args.batch_size)
        results["retrieval"]["shards"] = list(args.shards)
    if tasks:
        results["zeroshot"] = {t.name: run_zero_shot(model, tokenizer, preprocess, t,
                                                     images_dir=args.images) for t in tasks}
    return results


def run_eval(args: argparse.Namespace) -> int:
    _ensure_logging()
    try:
        results = evaluate_args(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"wit eval: {e}", file=sys.stderr)
        return 2
    text = json.dumps(results, indent=1, sort_keys=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    print(text)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.cli")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_train_parser(subparsers)
    add_eval_parser(subparsers)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
