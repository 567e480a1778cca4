"""Checks before a curation starts: every input path, URL scheme and the runner.

Input: the run's inputs, its output directory and Beam options. Output: nothing, or a
``ConfigError`` with one line that says what is wrong and how to fix it (``wit curate``
exits 2 on it). These run before the scorer loads and before anything is written, so a
wrong flag costs a second, not a model load and a half-made output directory.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Optional

from apache_beam.io.filesystems import FileSystems

from pipeline.config import ConfigError

# What to install when Beam has no filesystem for a scheme (Beam registers a filesystem only
# when its extra's packages import).
SCHEME_HINTS = {
    "s3": "pip install 'apache-beam[aws]' (Beam's S3 filesystem, boto3)",
    "gs": "pip install 'apache-beam[gcp]' (Beam's GCS filesystem)",
    "hdfs": "pip install 'apache-beam[hadoop]' and set --hdfs_host/--hdfs_port",
    "az": "pip install 'apache-beam[azure]'",
}
# Beam registers its S3 and GCS filesystems whether or not their client libraries import; they
# fail only on first use, deep inside a read. The module each needs:
SCHEME_MODULES = {"s3": "boto3", "gs": "google.cloud.storage"}
SUPPORTED_RUNNERS = "the local runner (default), DataflowRunner, or a portable runner (FlinkRunner, SparkRunner)"
UNSUPPORTED_RUNNERS = {
    "DaskRunner": "Beam's DaskRunner drops outputs (Read ignored, finish_bundle outputs lost, "
                  "multi-output ParDos misrouted, only the last sink runs: docs/scale.md)",
    "InteractiveRunner": "it is for notebooks; a curation is a batch job",
}


def scheme_of(path: str) -> str:
    return path.split("://", 1)[0].lower() if "://" in path else ""


def check_scheme(flag: str, path: str) -> None:
    """A path whose scheme Beam has no filesystem for fails with what to install."""
    scheme = scheme_of(path)
    if not scheme:
        return
    hint = SCHEME_HINTS.get(scheme, "use a local path, gs:// or s3://")
    module = SCHEME_MODULES.get(scheme)
    try:
        usable = importlib.util.find_spec(module) is not None if module else True
        FileSystems.get_filesystem(path)
    except Exception:  # ValueError (no filesystem), BeamIOError (its import failed)
        usable = False
    if not usable:
        raise ConfigError(f"{flag} {path}: Beam has no usable filesystem for {scheme}:// here; {hint}")


def check_local_file(flag: str, path: Optional[str]) -> None:
    """A local input file that is missing or a directory fails now, not inside the pipeline."""
    if not path or scheme_of(path):
        return
    if not os.path.exists(path):
        raise ConfigError(f"{flag} {path}: no such file (relative paths are read from {os.getcwd()})")
    if os.path.isdir(path):
        raise ConfigError(f"{flag} {path}: is a directory; give a file")


def check_runner(name: str) -> None:
    """A runner we know drops data, or one Beam cannot create here, fails before any work."""
    if not name or name in ("DirectRunner", "FnApiRunner"):
        return
    short = name.rsplit(".", 1)[-1]
    if short in UNSUPPORTED_RUNNERS:
        raise ConfigError(f"--runner {name}: not supported: {UNSUPPORTED_RUNNERS[short]}; use {SUPPORTED_RUNNERS}")
    from apache_beam.runners.runner import create_runner

    try:
        create_runner(name)
    except ImportError as exc:
        raise ConfigError(f"--runner {name}: cannot load it here ({exc}); for DataflowRunner: "
                          "pip install 'apache-beam[gcp]'") from None
    except ValueError as exc:
        raise ConfigError(f"--runner {name}: {str(exc).splitlines()[0]}; use {SUPPORTED_RUNNERS}") from None


def check_inputs(inputs, output_dir: str) -> None:
    """Every input path and the output directory: scheme known, local files present."""
    check_scheme("--output", output_dir)
    if inputs.seeds_file:
        check_scheme("--seeds", inputs.seeds_file)
        check_local_file("--seeds", inputs.seeds_file)
    for flag, path in (("--url-list", inputs.url_list), ("--warc", inputs.warc)):
        if path:
            check_scheme(flag, path)
