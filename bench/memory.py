"""Peak memory of `wit curate` at 10k and 100k pairs: does anything grow with the input?

Input: generated pairs — an img2dataset-style URL list (parquet) of N distinct image URLs on
one loopback host, served from memory by ``bench.common.FileServer`` (``--distinct`` photo-like
JPEGs; each URL carries its own query string, so every pair is fetched, resized and hashed, and
exact dedupe then drops the repeats). The run is the sample config (bundled tiny scorer,
128 px) with URL-list input. Output: wall time and peak RSS of the whole `wit curate` process
tree (sampled every 0.1 s) per size, and the ratio largest / smallest (target <= 1.3).

    .venv/bin/python -m bench.memory                      # 10k and 100k
    .venv/bin/python -m bench.memory --sizes 2000 20000   # quicker
    .venv/bin/python -m bench.memory -- --direct_running_mode=multi_processing --direct_num_workers=2

Measured 2026-11-27 (2 CPU cores, FnApiRunner, 1000 distinct JPEGs), before and after the
resized bytes were spilled to OUT/_work/images (transforms/image_store.py):
  bytes inline in the records:  10k pairs 198 s, peak 1531 MB; 100k 860 s, 5657 MB: ratio 3.70
  bytes spilled (the default):  10k pairs  80 s, peak 1257 MB; 100k 575 s, 1598 MB: ratio 1.27
  + slots dataclass records:    10k pairs  97 s, peak 1255 MB; 100k 632 s, 1523 MB: ratio 1.21
  + near-dedupe prefix by size: 10k pairs  91 s, peak 1238 MB; 100k 663 s, 1488 MB: ratio 1.20
Inline, growth was ~45 KB per pair: the FnApiRunner keeps a stage's whole output in memory and
decodes a GroupByKey's input into Python objects, and the images crossed three shuffles. What is
left (~3 KB per pair) is the records themselves at the fused-stage boundaries.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import WORK, FileServer, make_jpegs, run_measured

log = logging.getLogger("bench.memory")
PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_url_list(path: str, base_url: str, names: list[str], n: int) -> None:
    """``n`` rows: distinct URLs over ``names`` (query string), a three-plus-word caption each."""
    urls = [f"{base_url}/{names[i % len(names)]}?pair={i}" for i in range(n)]
    captions = [f"a photo of generated scene number {i % len(names)}" for i in range(n)]
    pq.write_table(pa.table({"url": urls, "caption": captions}), path)


def curate_cmd(url_list: str, output: str, beam_args: list[str]) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", "curate", "--config", os.path.join(PROJECT, "configs", "sample.yaml"),
            "--url-list", url_list, "--output", output, "--overwrite", "--allow-private-networks",
            "--set", "fetch.concurrency=32", "--set", "fetch.per_host_concurrency=32",
            "--set", "output.samples_per_shard=1000", *beam_args]


def measure(size: int, base_url: str, names: list[str], beam_args: list[str]) -> dict:
    work = os.path.join(WORK, "memory")
    os.makedirs(work, exist_ok=True)
    url_list = os.path.join(work, f"pairs_{size}.parquet")
    write_url_list(url_list, base_url, names, size)
    env = dict(os.environ, HF_HUB_OFFLINE="1", NO_ALBUMENTATIONS_UPDATE="1", PYTHONPATH=PROJECT)
    result = run_measured(curate_cmd(url_list, os.path.join(work, f"out_{size}"), beam_args), env=env,
                          timeout=3600)
    if result.returncode != 0:
        raise RuntimeError(f"wit curate on {size} pairs failed (rc {result.returncode}):\n{result.output[-3000:]}")
    return {"pairs": size, "seconds": result.seconds, "peak_rss_mb": result.peak_rss_mb,
            "funnel": result.output.strip().splitlines()[-1] if result.output.strip() else ""}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--distinct", type=int, default=1000, help="distinct JPEGs served")
    parser.add_argument("beam_args", nargs="*", help="Beam flags after --, passed to wit curate")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)
    names = make_jpegs(os.path.join(WORK, "memory_jpegs"), args.distinct, sizes=(160, 360))
    rows = []
    with FileServer(os.path.join(WORK, "memory_jpegs")) as server:
        for size in args.sizes:
            row = measure(size, server.base_url, names, args.beam_args)
            log.info("%7d pairs: %7.1f s  peak RSS %7.0f MB", row["pairs"], row["seconds"], row["peak_rss_mb"])
            rows.append(row)
    ratio = rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]
    log.info("peak RSS ratio %d / %d pairs: %.2f (target <= 1.3)", rows[-1]["pairs"], rows[0]["pairs"], ratio)
    return 0


if __name__ == "__main__":
    sys.exit(main())
