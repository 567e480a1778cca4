"""``wit ab CONFIG_A CONFIG_B``: does curation choice A beat B on the model it trains?

Input: two curation configs (each a YAML over configs/base.yaml, as ``wit curate --config``),
the inputs both curate (``seeds:FILE``, ``url-list:PATH``, ``warc:GLOB``; none: the bundled
sample web, generated and served on 127.0.0.1), the training seeds and steps, and eval tasks:
zero-shot YAMLs with their image folders and captioned-image folders for retrieval (on the
sample web its three held-out scene tasks first, pipeline/sample/heldout.py).
Output, under OUT: ``a/curated`` and ``b/curated`` (complete `wit curate` outputs), ``a/seed{S}``
and ``b/seed{S}`` (training runs), ``ab.json`` (every score of every run) and ``ab.html`` (the
table and a plot); the table is returned for printing. Each task's headline score is zero-shot
top-1, or for a retrieval folder the mean of image->text and text->image recall@1.

Both arms train the same model config for the same steps, batch and seeds; curation is
deterministic, so each arm is curated once and the seeds vary only the training. Whether the
seeds separate the arms is pipeline/ab_report.py's Welch test. Nothing is dropped here: what
curation drops is in each arm's own rejections.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Optional, Sequence

from pipeline.ab_report import compare, format_table, write_html
from pipeline.config import CONFIG_DIR, ConfigError, config_path, load_config

log = logging.getLogger(__name__)

INPUT_KINDS = ("seeds", "url-list", "warc")
DEFAULT_MODEL = "configs/models/wit-tiny.json"  # relative paths resolve as --config paths do


@dataclass(frozen=True)
class EvalTask:
    """A zero-shot task (``yaml`` + ``images``) or a retrieval folder (``pairs``)."""

    name: str
    yaml: str = ""
    images: str = ""
    pairs: str = ""


@dataclass(frozen=True)
class ABSpec:
    config_a: str
    config_b: str
    output: str
    inputs: tuple = ()  # ("seeds" | "url-list" | "warc", path) entries; () = the sample web
    seeds: tuple = (0, 1, 2)
    steps: int = 200
    batch_size: int = 64
    lr: float = 1e-3
    model: str = str(CONFIG_DIR / "models" / "wit-tiny.json")
    tasks: tuple = ()  # EvalTask entries
    sample_tasks: bool = True  # on the sample web, its held-out scene tasks first
    overrides_a: tuple = ()
    overrides_b: tuple = ()
    sample_pages: int = 96  # pages of the generated sample web when no inputs are given
    sample_mismatched: Optional[float] = None  # its share of mismatched alt texts (None: the generator's)
    beam_args: tuple = field(default=())


def parse_input(text: str) -> tuple[str, str]:
    """``KIND:PATH`` -> ``(kind, path)``; a clear ConfigError otherwise."""
    kind, sep, path = text.partition(":")
    if not sep or kind not in INPUT_KINDS or not path:
        raise ConfigError(f"--inputs {text!r}: expected KIND:PATH with KIND one of {', '.join(INPUT_KINDS)} "
                          "(e.g. seeds:seeds.txt, url-list:pool.parquet, warc:'crawl/*.warc.gz')")
    return kind, path


def parse_task(text: str) -> EvalTask:
    """``zeroshot:TASK.yaml[=IMAGES]`` or ``pairs:DIR`` -> an EvalTask."""
    kind, sep, rest = text.partition(":")
    if kind == "pairs" and rest:
        return EvalTask(name=os.path.basename(os.path.normpath(rest)), pairs=rest)
    if kind == "zeroshot" and rest:
        yaml_path, _, images = rest.partition("=")
        return EvalTask(name=os.path.splitext(os.path.basename(yaml_path))[0], yaml=yaml_path, images=images)
    raise ConfigError(f"--eval {text!r}: expected zeroshot:TASK.yaml[=IMAGES_DIR] or pairs:DIR")


def _inputs(entries: Sequence[tuple[str, str]]):
    from pipeline.build import Inputs

    given = {}
    for kind, path in entries:
        if kind in given:
            raise ConfigError(f"--inputs {kind}: given twice")
        given[kind] = path
    return Inputs(seeds_file=given.get("seeds"), url_list=given.get("url-list"), warc=given.get("warc"))


def _curate(config: str, overrides: Sequence[str], inputs, out: str, beam_args: Sequence[str]) -> dict:
    from pipeline.run import run_curation

    cfg = load_config([config_path(config)], list(overrides))
    return run_curation(cfg, inputs, out, beam_args=beam_args, overwrite=True)


def _train_and_eval(spec: ABSpec, shards: str, out: str, seed: int, tasks: Sequence[EvalTask]) -> dict:
    from trainer.config import TrainConfig
    from trainer.eval_tasks import load_task, run_pair_retrieval, run_zero_shot
    from trainer.loop import train
    from trainer.model import create_model

    cfg = TrainConfig(model=spec.model, shards=(shards,), steps=spec.steps, batch_size=spec.batch_size,
                      lr=spec.lr, warmup_steps=max(1, spec.steps // 10), seed=seed, output=out,
                      save_every=0, log_every=max(1, spec.steps // 5), tensorboard=False)
    result = train(cfg)
    model, _, preprocess, tokenizer = create_model(spec.model, result.checkpoint_path)
    scores: dict = {"final_loss": result.final_loss, "tasks": {}}
    for task in tasks:
        if task.pairs:
            metrics = run_pair_retrieval(model, tokenizer, preprocess, task.pairs)
            headline = (metrics["image_to_text_r1"] + metrics["text_to_image_r1"]) / 2
        else:
            metrics = run_zero_shot(model, tokenizer, preprocess, load_task(task.yaml), task.images or None)
            metrics.pop("per_class_top1", None)
            headline = metrics["top1"]
        scores["tasks"][task.name] = {"score": headline, "metrics": metrics}
    return scores


def _kept(stats: dict) -> int:
    return int(stats.get("kept") or 0)


def _curate_arms(spec: ABSpec) -> tuple[dict, list]:
    """Both arms curated from the same inputs (the sample web served once for both); the tasks,
    with the sample web's held-out ones first."""
    tasks = list(spec.tasks)
    curated: dict[str, dict] = {}
    arms = (("a", spec.config_a, spec.overrides_a), ("b", spec.config_b, spec.overrides_b))
    if spec.inputs:
        inputs = _inputs(spec.inputs)
        for arm, config, overrides in arms:
            curated[arm] = _curate(config, overrides, inputs, os.path.join(spec.output, arm, "curated"),
                                   spec.beam_args)
    else:
        from pipeline.build import Inputs
        from pipeline.sample import SampleServer, generate_site
        from pipeline.sample.heldout import heldout_tasks, write_heldout

        if spec.sample_tasks:
            heldout = os.path.join(spec.output, "heldout")
            write_heldout(heldout)
            tasks = [EvalTask(os.path.splitext(os.path.basename(y))[0], yaml=y, images=d)
                     for y, d in heldout_tasks(heldout)] + tasks
        site = generate_site(seed=0, n_pages=spec.sample_pages, mismatched_share=spec.sample_mismatched)
        with SampleServer(site) as server:
            seeds_file = os.path.join(spec.output, "seeds.txt")
            with open(seeds_file, "w", encoding="utf-8") as fh:
                fh.write("\n".join(server.seed_urls) + "\n")
            for arm, config, overrides in arms:
                curated[arm] = _curate(config, ("fetch.allow_private_networks=true",) + tuple(overrides),
                                       Inputs(seeds_file=seeds_file),
                                       os.path.join(spec.output, arm, "curated"), spec.beam_args)
    return curated, tasks


def run_ab(spec: ABSpec) -> dict:
    """Curate, train and evaluate both arms; write ab.json and ab.html; return the results."""
    from trainer.threads import set_torch_threads

    start = time.monotonic()
    os.makedirs(spec.output, exist_ok=True)
    names = (os.path.splitext(os.path.basename(spec.config_a))[0],
             os.path.splitext(os.path.basename(spec.config_b))[0])
    if names[0] == names[1]:
        names = (names[0] + " (A)", names[1] + " (B)")
    curated, tasks = _curate_arms(spec)
    if not tasks:
        raise ConfigError("no eval task: give --eval zeroshot:TASK.yaml=IMAGES or --eval pairs:DIR")
    set_torch_threads()
    runs: dict[str, list] = {"a": [], "b": []}
    for arm in ("a", "b"):
        shards = os.path.join(spec.output, arm, "curated", "shards")
        for seed in spec.seeds:
            log.info("wit ab: training arm %s seed %d", arm, seed)
            runs[arm].append(_train_and_eval(spec, shards, os.path.join(spec.output, arm, f"seed{seed}"),
                                             seed, tasks))
    rows = [compare(t.name, [r["tasks"][t.name]["score"] for r in runs["a"]],
                    [r["tasks"][t.name]["score"] for r in runs["b"]]) for t in tasks]
    seconds = time.monotonic() - start
    meta = {"A": f"{spec.config_a} {' '.join(spec.overrides_a)}".strip(),
            "B": f"{spec.config_b} {' '.join(spec.overrides_b)}".strip(),
            "inputs": ", ".join(f"{k}:{p}" for k, p in spec.inputs) or f"sample web ({spec.sample_pages} pages)",
            "kept pairs": f"A {_kept(curated['a'])}, B {_kept(curated['b'])}",
            "training": f"{os.path.basename(spec.model)}, {spec.steps} steps x batch {spec.batch_size}, "
                        f"seeds {list(spec.seeds)}",
            "time": f"{seconds:.0f} s"}
    result = {"names": names, "meta": meta, "rows": rows, "runs": runs}
    with open(os.path.join(spec.output, "ab.json"), "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2, sort_keys=True)
    html_path = write_html(os.path.join(spec.output, "ab.html"), rows, names, meta)
    lines = [f"{k}: {v}" for k, v in meta.items()]
    result["table"] = "\n".join(lines + ["", format_table(rows, names, spec.seeds), "", f"report: {html_path}"])
    return result



AB_DESCRIPTION = """Curate the same inputs with two configs, train the same model on each for the same steps and
seeds, evaluate both on the same tasks, and print mean ± sd per task, the gap, and whether the
seeds separate the arms (Welch's t-test, p < 0.05). Writes OUT/ab.json and OUT/ab.html.

examples:
  wit ab configs/sample.yaml configs/sample_unfiltered.yaml --output ab_out
      the bundled sample web (served on 127.0.0.1), its held-out scene tasks, seeds 0 1 2
  wit ab mine.yaml theirs.yaml --inputs url-list:pool.parquet --eval pairs:tuxpaint_pairs \\
      --eval zeroshot:configs/eval/sample_shapes.yaml=heldout/shapes --steps 1000 --output ab_out

Beam flags (--runner, --direct_num_workers, ...) pass through to both curations."""


def add_ab_parser(sub, formatter) -> None:
    """The ``ab`` subcommand on ``sub`` (pipeline/cli.py passes its help formatter)."""
    p = sub.add_parser("ab", help="compare two curation configs by the model each one trains",
                       description=AB_DESCRIPTION, formatter_class=formatter)
    p.add_argument("config_a", metavar="CONFIG_A", help="curation YAML of arm A (over configs/base.yaml)")
    p.add_argument("config_b", metavar="CONFIG_B", help="curation YAML of arm B")
    p.add_argument("--output", required=True, help="directory for both arms' outputs, runs and the report")
    p.add_argument("--inputs", action="append", default=[], metavar="KIND:PATH",
                   help="what both arms curate: seeds:FILE, url-list:PATH or warc:GLOB (repeatable); "
                        "none: the bundled sample web")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds per arm")
    p.add_argument("--steps", type=int, default=200, help="training steps per run")
    p.add_argument("--batch-size", type=int, default=64, help="training batch size")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    p.add_argument("--model", default=DEFAULT_MODEL, help="open_clip model (name or JSON) both arms train")
    p.add_argument("--eval", dest="tasks", action="append", default=[], metavar="TASK",
                   help="zeroshot:TASK.yaml[=IMAGES_DIR] or pairs:DIR (repeatable); on the sample web "
                        "its three held-out scene tasks come first")
    p.add_argument("--set-a", dest="overrides_a", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for arm A only (repeatable)")
    p.add_argument("--set-b", dest="overrides_b", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for arm B only (repeatable)")
    p.add_argument("--pages", type=int, default=96, help="pages of the generated sample web (no --inputs)")
    p.set_defaults(handler=cmd_ab)


def _model_path(model: str) -> str:
    """A model JSON path resolved like a --config path; an open_clip model name as given."""
    return str(config_path(model)) if model.endswith(".json") else model


def cmd_ab(args) -> int:
    for path in (args.config_a, args.config_b):
        if not config_path(path).is_file():
            raise ConfigError(f"{path}: no such config (looked in the working directory, the project root "
                              "and configs/)")
    spec = ABSpec(config_a=str(config_path(args.config_a)), config_b=str(config_path(args.config_b)),
                  output=args.output, inputs=tuple(parse_input(t) for t in args.inputs),
                  seeds=tuple(args.seeds), steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                  model=_model_path(args.model), tasks=tuple(parse_task(t) for t in args.tasks),
                  overrides_a=tuple(args.overrides_a), overrides_b=tuple(args.overrides_b),
                  sample_pages=args.pages, beam_args=tuple(getattr(args, "beam_args", ())))
    result = run_ab(spec)
    print(result["table"])
    return 0
