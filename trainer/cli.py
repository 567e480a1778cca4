"""``wit train`` and ``wit eval``: argparse registration and handlers.

Input: command-line arguments (``pipeline/cli.py`` registers these subcommands; ``python -m
trainer.cli`` runs them alone). Output: ``train`` writes checkpoints and logs under
``--output`` and prints a JSON summary; ``eval`` prints metrics as JSON to stdout.
Exit codes: 0 ok, 2 bad arguments or config (message on stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any, Optional, Sequence

from trainer.config import DEFAULT_MODEL, load_train_config

logger = logging.getLogger(__name__)


def add_train_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train", help="train a CLIP model on shards",
        description="Contrastive training of an open_clip model on wit-curator shards.")
    parser.add_argument("--config", metavar="FILE",
                        help="train YAML (e.g. configs/train/tiny.yaml)")
    parser.add_argument("--shards", metavar="DIR", action="append",
                        help="shard directory (repeatable); replaces the config's list")
    parser.add_argument("--output", metavar="DIR", help="run directory")
    parser.add_argument("--steps", type=int, metavar="N")
    parser.add_argument("--batch-size", type=int, metavar="N")
    parser.add_argument("--model", help="open_clip model name or model JSON path")
    parser.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                        dest="set_values", help="override any train config key (repeatable)")
    parser.set_defaults(func=run_train, handler=run_train)  # hosts dispatch on either name
    return parser


def add_eval_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "eval", help="score a checkpoint on held-out shards",
        description="Mean matched-pair CLIP score and in-batch retrieval recall@1/5 "
                    "over held-out shards; JSON to stdout.")
    parser.add_argument("--checkpoint", required=True, metavar="FILE",
                        help="checkpoint (e.g. RUN/checkpoints/final.pt) or open_clip tag")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help="open_clip model name or model JSON path (default %(default)s)")
    parser.add_argument("--shards", metavar="DIR", action="append", required=True,
                        help="held-out shard directory (repeatable)")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N",
                        help="pairs per retrieval batch (default %(default)s)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
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
             "batch_size": args.batch_size, "model": args.model}
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
    result = train(cfg)
    summary = {"steps": result.steps, "final_loss": round(result.final_loss, 6),
               "first_loss": round(result.losses[0], 6),
               "samples_per_s": round(result.samples_per_s, 1),
               "skipped_samples": result.skipped_samples, "checkpoint": result.checkpoint_path,
               "output": cfg.output}
    print(json.dumps(summary, indent=1))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from trainer.evaluate import evaluate_shards
    from trainer.model import create_model

    from trainer.loop import resolve_device

    _ensure_logging()
    device = resolve_device(args.device)
    try:
        model, _, preprocess_val, tokenizer = create_model(args.model, args.checkpoint,
                                                           device=device)
        metrics = evaluate_shards(model, preprocess_val, tokenizer, args.shards,
                                  batch_size=args.batch_size)
    except (ValueError, FileNotFoundError) as e:
        print(f"wit eval: {e}", file=sys.stderr)
        return 2
    metrics.update({"model": args.model, "checkpoint": args.checkpoint})
    print(json.dumps(metrics, indent=1, sort_keys=True))
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
