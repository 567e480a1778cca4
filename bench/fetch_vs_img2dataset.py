"""Download + resize throughput: wit curate vs img2dataset on the same images, in one run.

Generates N photo-like JPEGs (300-1200 px a side), serves them from one loopback
server, writes one URL list, then runs
  img2dataset (processes = cores, 32 threads, webdataset output, its own stats)
  wit curate --url-list (same resize mode and size, JPEG q95, scoring off)
and prints images/s, peak RSS of each process tree and the ratio. It runs
``--rounds`` rounds (default 3) of both and compares median images/s: on a shared
2-core machine either tool's time moves by 20 % from one run to the next.

The downscale filter: wit runs once with its default, bicubic (open_clip's
filter, ~1 ms more CPU per image), which is compared with the target, and once
with ``resize.resample=box``, the area average img2dataset shrinks with
(cv2.INTER_AREA): the like-for-like figure. ``--resample`` picks the list.

    .venv/bin/python bench/fetch_vs_img2dataset.py [--n 2000] [--size 256] [--mode border]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import sys

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import WORK, FileServer, make_jpegs, run_measured  # noqa: E402

PY = sys.executable
ENV = dict(os.environ, HF_HUB_OFFLINE="1", NO_ALBUMENTATIONS_UPDATE="1", WANDB_MODE="disabled")


def img2dataset_cmd(url_list: str, out: str, size: int, mode: str, procs: int, threads: int) -> list[str]:
    code = (
        "import img2dataset; img2dataset.download("
        f"url_list={url_list!r}, input_format='parquet', url_col='url', caption_col='caption', "
        f"output_folder={out!r}, output_format='webdataset', image_size={size}, resize_mode={mode!r}, "
        f"processes_count={procs}, thread_count={threads}, encode_quality=95, encode_format='jpg', "
        "number_sample_per_shard=1000, distributor='multiprocessing', enable_wandb=False, timeout=10)"
    )
    return [PY, "-c", code]


def wit_cmd(url_list: str, out: str, size: int, mode: str, extra: list[str]) -> list[str]:
    sets = [f"resize.image_size={size}", f"resize.mode={mode}", "resize.encode_quality=95",
            "score.enabled=false", "fetch.allow_private_networks=true", "fetch.concurrency=32",
            "fetch.per_host_concurrency=32", "output.samples_per_shard=1000",
            "image.max_aspect=100"]  # img2dataset keeps every aspect: same work on both sides
    cmd = [PY, "-m", "pipeline.cli", "curate", "--url-list", url_list, "--output", out, "--overwrite"]
    for s in sets:
        cmd += ["--set", s]
    return cmd + extra


def count_img2dataset(out: str) -> int:
    total = 0
    for path in glob.glob(os.path.join(out, "*_stats.json")):
        with open(path) as fh:
            total += json.load(fh).get("successes", 0)
    return total


def _wit_ok(out: str) -> tuple[int, int]:
    """(images downloaded and resized, kept) of one wit run."""
    with open(os.path.join(out, "stats.json")) as fh:
        stats = json.load(fh)
    # Images downloaded and resized: img2dataset's "successes". Our near-dedupe may then drop a
    # few of them, which img2dataset does not do; the kept count is printed too.
    return {row["stage"]: row["out"] for row in stats["funnel"]}.get("ResizeImages", stats["kept"]), stats["kept"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--mode", default="border")
    ap.add_argument("--threads", type=int, default=32)
    ap.add_argument("--resample", default="bicubic,box",
                    help="wit's downscale filters, one run each; the first is compared with the target")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds of (img2dataset, wit per filter); medians are compared (shared machines are noisy)")
    args = ap.parse_args()
    filters = [f for f in args.resample.split(",") if f]
    procs = os.cpu_count() or 2
    images = os.path.join(WORK, "photos")
    names = make_jpegs(images, args.n)
    out_root = os.path.join(WORK, "fetch_bench")
    shutil.rmtree(out_root, ignore_errors=True)
    os.makedirs(out_root)
    print(f"images: {args.n} photo-like JPEGs, 300-1200 px, resize {args.mode} {args.size}, {procs} cores, "
          f"{args.rounds} rounds")
    rates: dict[str, list[float]] = {"img2dataset": [], **{f: [] for f in filters}}
    with FileServer(images) as server:
        url_list = os.path.join(out_root, "urls.parquet")
        pq.write_table(pa.table({"url": [f"{server.base_url}/{n}" for n in names],
                                 "caption": [f"a photo numbered {i}" for i in range(len(names))]}), url_list)
        for rnd in range(1, args.rounds + 1):
            i2d_out = os.path.join(out_root, f"i2d_{rnd}")
            res = run_measured(img2dataset_cmd(url_list, i2d_out, args.size, args.mode, procs, args.threads), ENV)
            if res.returncode != 0:
                print(f"img2dataset failed (rc {res.returncode}):\n{res.output[-3000:]}")
                return 1
            i2d_ok = count_img2dataset(i2d_out)
            rates["img2dataset"].append(i2d_ok / res.seconds)
            print(f"round {rnd} img2dataset       {i2d_ok:5d} ok  {res.seconds:6.1f} s  {i2d_ok / res.seconds:7.1f} "
                  f"images/s  peak RSS {res.peak_rss_mb:6.0f} MB  ({procs} processes x {args.threads} threads, "
                  "area filter)")
            shutil.rmtree(i2d_out, ignore_errors=True)
            for f in filters:
                out = os.path.join(out_root, f"wit_{f}")
                res = run_measured(wit_cmd(url_list, out, args.size, args.mode, ["--set", f"resize.resample={f}"]), ENV)
                if res.returncode != 0:
                    print(f"wit ({f}) failed (rc {res.returncode}):\n{res.output[-3000:]}")
                    return 1
                ok, kept = _wit_ok(out)
                rates[f].append(ok / res.seconds)
                print(f"round {rnd} wit curate {f:<7}{ok:5d} ok  {res.seconds:6.1f} s  {ok / res.seconds:7.1f} "
                      f"images/s  peak RSS {res.peak_rss_mb:6.0f} MB  ({kept} kept after dedupe)  "
                      f"ratio {ok / res.seconds / rates['img2dataset'][-1]:.2f}x")
    i2d_median = statistics.median(rates["img2dataset"])
    for f in filters:
        print(f"median images/s: wit ({f}) {statistics.median(rates[f]):.1f}, img2dataset {i2d_median:.1f}: "
              f"ratio {statistics.median(rates[f]) / i2d_median:.2f}x")
    print(f"ratio wit ({filters[0]}) / img2dataset, medians of {args.rounds} rounds: "
          f"{statistics.median(rates[filters[0]]) / i2d_median:.2f}x  (target >= 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
