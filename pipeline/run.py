"""Run a curation end to end: checks before start, the Beam run, the summary.

Input: a ``CurateConfig``, inputs, an output directory and Beam flags.
Output: the files of the output contract and the parsed ``stats.json``.
Everything that can fail without running the pipeline fails here first:
config, inputs, an output directory that already holds a run, scorer weights.
Items that met a bug in our code do not fail the run: they are counted in
stats.json ``internal_errors``, which ``format_internal_errors`` summarises.
Once the pipeline has finished, ``run_info.json`` records what only the run knows:
``date`` (UTC, when it started), ``duration_s``, ``runner`` and ``scorer`` (a readable
name: the model and the pretrained file's name or tag, ``scorer_name``). It is a file of
its own so that stats.json and the rest stay byte-identical across reruns.
"""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import DirectOptions, StandardOptions

from pipeline import preflight, shard_format
from pipeline.build import Inputs, build_pipeline
from pipeline.config import CONFIG_DIR, ConfigError, CurateConfig, dump_yaml, with_overrides
from pipeline.malloc_tuning import malloc_tuned
from pipeline.progress import progress_for
from pipeline.runners import LOCAL_RUNNER_NAMES, local_workers, make_options, make_runner
from transforms.checkpoint import FETCHED, WORK_DIR, work_dir
from transforms.embeddings import EMBEDDINGS_DIR
from transforms.url_list import expand_paths
from transforms.warc import expand_warc_paths
from transforms.output_files import write_atomically

log = logging.getLogger(__name__)

PROJECT_ROOT = CONFIG_DIR.parent


class OutputExists(RuntimeError):
    """The output directory already holds a run and --overwrite was not given."""


class CannotResume(RuntimeError):
    """--resume was given but the output directory holds no run this config can continue."""


def resolve_project_path(value: str) -> str:
    """A relative path that does not exist from the CWD is looked up from the project root
    (so configs/sample.yaml works from anywhere)."""
    if not value or os.path.isabs(value) or "://" in value or os.path.exists(value):
        return value
    candidate = PROJECT_ROOT / value
    return str(candidate) if candidate.exists() else value


def resolve_paths(cfg: CurateConfig) -> CurateConfig:
    return with_overrides(cfg, score={"model": resolve_project_path(cfg.score.model),
                                      "pretrained": resolve_project_path(cfg.score.pretrained)})


def present(path: str) -> bool:
    """A file, or a directory holding anything. Object stores have no directory entries:
    gs://b/out/shards is there only through the objects under it."""
    if FileSystems.exists(path):
        return True
    return bool(FileSystems.match([FileSystems.join(path, "**")], limits=[1])[0].metadata_list)


def remove(path: str, directory: bool = True) -> None:
    """Delete a file, or a directory and everything under it. Local directories go as a whole;
    on an object store a trailing / deletes every object under the prefix."""
    remote_dir = directory and "://" in path
    FileSystems.delete([path.rstrip("/") + "/" if remote_dir else path])


def prepare_output(output_dir: str, overwrite: bool, resume: bool = False) -> None:
    """Refuse to mix runs; --overwrite clears the old one. With ``resume`` the saved work
    (OUT/_work) is kept and whatever final files a killed run left are rewritten whole."""
    existing = [d for d in (shard_format.SHARDS_DIR, shard_format.REJECTIONS_DIR, shard_format.STATS_FILE,
                            EMBEDDINGS_DIR, WORK_DIR, shard_format.RUN_INFO_FILE)
                if present(FileSystems.join(output_dir, d))]
    if existing and not overwrite and not resume:
        unfinished = WORK_DIR in existing and shard_format.STATS_FILE not in existing
        hint = " (an unfinished run: --resume continues it)" if unfinished else ""
        raise OutputExists(f"{output_dir} already holds a run ({', '.join(existing)}){hint}; "
                           "pass --overwrite to replace it or choose another --output")
    if resume:
        existing = [d for d in existing if d != WORK_DIR]
    for name in existing:
        remove(FileSystems.join(output_dir, name),
               directory=name not in (shard_format.STATS_FILE, shard_format.RUN_INFO_FILE))
    if "://" not in output_dir:
        Path(output_dir).mkdir(parents=True, exist_ok=True)


def check_resumable(cfg: CurateConfig, output_dir: str, flag: str = "--resume") -> None:
    """--resume continues a run of the same config only (its saved outcomes depend on it)."""
    path = FileSystems.join(output_dir, shard_format.RUN_CONFIG_FILE)
    if not FileSystems.exists(path):
        raise CannotResume(f"{flag}: {output_dir} holds no run to continue (no {shard_format.RUN_CONFIG_FILE})")
    with FileSystems.open(path) as fh:
        saved = fh.read().decode("utf-8")
    if saved != dump_yaml(cfg):
        raise CannotResume(f"{flag}: {path} differs from this run's config; use the same "
                           "--config/--set, or start afresh with --overwrite")


def check_incremental(cfg: CurateConfig, output_dir: str) -> None:
    """--incremental grows a finished run of the same config that kept its fetches."""
    check_resumable(cfg, output_dir, "--incremental")
    if not FileSystems.exists(FileSystems.join(output_dir, shard_format.STATS_FILE)):
        raise CannotResume(f"--incremental: {output_dir} holds no finished run (no stats.json); "
                           "--resume continues an unfinished one")
    if not present(work_dir(output_dir, FETCHED)):
        raise CannotResume(f"--incremental: {output_dir} kept no fetched images; curate it with "
                           "--set output.keep_fetched=true to grow it later")


def clear_work(output_dir: str) -> None:
    """Saved work is not part of the output: removed once the run has finished."""
    path = FileSystems.join(output_dir, WORK_DIR)
    if present(path):
        remove(path)


def check_scorer(cfg: CurateConfig) -> None:
    """Load the scorer once before crawling: missing weights fail now, not in an hour."""
    if not cfg.score.enabled:
        return
    from pipeline.specs import scorer_spec
    from transforms.clip_model import load_scorer

    start = time.monotonic()
    load_scorer(scorer_spec(cfg))
    log.info("scorer %s/%s loads (%.1fs)", cfg.score.model, cfg.score.pretrained, time.monotonic() - start)


def run_curation(cfg: CurateConfig, inputs: Inputs, output_dir: str, beam_args: Sequence[str] = (),
                 overwrite: bool = False, score_handler=None, show_progress: bool = False,
                 resume: bool = False, incremental: bool = False) -> dict:
    """Validate, run the pipeline to completion, return stats.json as a dict.

    ``show_progress``: report live counts while a local run goes (pipeline/progress.py).
    ``resume``: continue a killed run in ``output_dir`` (same config), reusing its saved fetches.
    ``incremental``: rerun a finished ``output_dir`` (same config, ``output.keep_fetched``) over
    grown inputs: images it fetched already are not downloaded again.
    """
    if not inputs.crawls and not inputs.url_list and not inputs.warc:
        raise ConfigError("no input: give --seeds FILE (one URL per line), --url-list PATH and/or --warc GLOB")
    options = make_options(beam_args)
    preflight.check_runner(options.view_as(StandardOptions).runner or "")
    FileSystems.set_options(options)  # s3:// and gs:// read their credentials and region from Beam's flags
    preflight.check_inputs(inputs, output_dir)
    if inputs.url_list:
        expand_paths(inputs.url_list)  # a missing or unknown-format list fails now
    if inputs.warc:
        expand_warc_paths(inputs.warc)  # so does a --warc glob matching nothing
    cfg = resolve_paths(cfg)
    if score_handler is None:
        check_scorer(cfg)
    if incremental:
        check_incremental(cfg, output_dir)
        resume = True
    elif resume:
        check_resumable(cfg, output_dir)
    prepare_output(output_dir, overwrite, resume)
    write_atomically(FileSystems.join(output_dir, shard_format.RUN_CONFIG_FILE),
                     dump_yaml(cfg).encode("utf-8"))
    workers = local_workers(options)  # before make_runner too (None: not a local run)
    runner_text = runner_name(options)  # before make_runner, which clears the local runner's name
    runner = make_runner(options)
    started, start = datetime.now(timezone.utc), time.monotonic()
    # The pipeline runs when its `with` exits, inside the progress reporter's; a local run (one long
    # process and its SDK workers) gives freed memory back to the OS (pipeline/malloc_tuning.py).
    with malloc_tuned(enabled=runner is not None), \
            progress_for(options, local=runner is not None, enabled=show_progress), \
            beam.Pipeline(runner=runner, options=options) as p:
        build_pipeline(p, cfg, inputs, output_dir, score_handler=score_handler, resume=resume,
                       local_workers=workers)
    duration = time.monotonic() - start
    log.info("pipeline finished in %.1fs", duration)
    write_run_info(output_dir, run_info(cfg, started, duration, runner_text))
    if not cfg.output.keep_fetched:
        clear_work(output_dir)
    return read_stats(output_dir)


def runner_name(options) -> str:
    """The Beam runner as a user reads it: ``FnApiRunner (local, multi_processing x 4)``, ``DataflowRunner``."""
    name = options.view_as(StandardOptions).runner or ""
    if name not in LOCAL_RUNNER_NAMES:
        return name
    direct = options.view_as(DirectOptions)
    mode, workers = direct.direct_running_mode or "in_memory", direct.direct_num_workers or 1
    return f"FnApiRunner (local, {mode}" + (f" x {workers})" if workers != 1 else ")")


def scorer_name(model: str, pretrained: str) -> str:
    """``wit-tiny · wit-tiny-scorer.pt`` for local files, ``ViT-B-32 · laion2b_s34b_b79k`` for open_clip tags."""
    def short(value: str) -> str:
        return os.path.basename(value.rstrip("/")) if ("/" in value or os.sep in value) else value

    model_text = short(model)
    if model_text.endswith(".json"):  # a model config file: its stem is the model's name
        model_text = model_text[:-len(".json")]
    return f"{model_text} · {short(pretrained)}" if pretrained else model_text


def run_info(cfg: CurateConfig, started: datetime, duration_s: float, runner: str) -> dict:
    """run_info.json: what only the run knows (when, how long, on what), and the scorer's name."""
    scorer = None
    if cfg.score.enabled:
        scorer = {"name": scorer_name(cfg.score.model, cfg.score.pretrained),
                  "model": cfg.score.model, "pretrained": cfg.score.pretrained}
    return {"date": started.isoformat(timespec="seconds"), "duration_s": round(duration_s, 1),
            "runner": runner, "scorer": scorer}


def write_run_info(output_dir: str, info: dict) -> None:
    write_atomically(FileSystems.join(output_dir, shard_format.RUN_INFO_FILE),
                     (json.dumps(info, indent=2) + "\n").encode("utf-8"))


def read_stats(output_dir: str) -> dict:
    with FileSystems.open(FileSystems.join(output_dir, shard_format.STATS_FILE)) as fh:
        return json.loads(fh.read().decode("utf-8"))


def internal_error_count(stats: dict) -> int:
    """How many pairs and pages met a bug in our code (stats.json ``internal_errors``)."""
    return int((stats.get("internal_errors") or {}).get("total") or 0)


def format_internal_errors(stats: dict, output_dir: str = "OUT") -> str:
    """What `wit curate` says when items met a bug: how many, per stage, the first detail, where to look."""
    section = stats.get("internal_errors") or {}
    total = internal_error_count(stats)
    if not total:
        return ""
    by_reason = section.get("by_reason") or {}
    lines = [f"internal errors: {total} item(s) met a bug in wit-curator and were set aside; "
             "the run completed and every other item is unaffected",
             "  by stage: " + ", ".join(f"{r} {n}" for r, n in by_reason.items())]
    samples = section.get("samples") or []
    if samples:
        first = samples[0]
        lines.append(f"  first: {first['reason']} {first.get('url') or first.get('key') or ''}: {first['detail']}")
    example = next(iter(by_reason), "fetch.internal_error")
    lines.append(f"  look in {output_dir}/rejections (reason *.internal_error; pages: stats.json "
                 f"pages.failed_by_reason), e.g. `wit inspect {output_dir} --sample 20 --reason {example}`, "
                 "and the WARNING log lines with tracebacks; please report it with a detail")
    return "\n".join(lines)


def format_funnel(stats: dict, output_dir: Optional[str] = None) -> str:
    """A plain-text funnel for terminals and logs."""
    lines = [f"pairs extracted {stats['pairs_extracted']}  kept {stats['kept']}  "
             f"rejected {stats['rejected']}  (accounting {'ok' if stats['accounting_ok'] else 'BROKEN'})",
             f"pages fetched {stats['pages']['fetched']}  failed {stats['pages']['failed']}"]
    for row in stats["funnel"]:
        dropped = ", ".join(f"{r} {n}" for r, n in row["dropped"].items()) or "-"
        lines.append(f"  {row['stage']:<15} in {row['in']:>6}  out {row['out']:>6}  dropped: {dropped}")
    if output_dir:
        lines.append(f"output: {output_dir}/shards (tar+parquet, sizes.json), {output_dir}/rejections, "
                     f"{output_dir}/stats.json")
    return "\n".join(lines)
