"""Peak memory of `wit curate` at 10k and 100k pairs: does anything grow with the input?

Input: generated pairs — an img2dataset-style URL list (parquet) of N distinct image URLs on
one loopback host. ``bench.common.SynthImageServer`` answers each URL with its own photo-like
JPEG (``SIDES``: 96-192 px sides, drawn from a seed that is the URL: deterministic, nothing
stored; every record after ResizeImages is the same 128-px JPEG whatever the source size), so
no two pairs share bytes or a near-duplicate pHash and *every* stage sees every pair. One
caption in 20 is a camera file name (``IMG_00020.JPG``): those pairs are ``caption.filename``
rejections, so the rejections writer grows with N too. The run is the sample config (bundled
tiny scorer, 128 px) with URL-list input and ``score.min_score=-1``: the tiny scorer was
trained on coloured shapes and would drop these pictures, and then the shard, parquet,
sizes.json and embedding writers would see nothing; with the threshold open every image is
still scored, and every pair that passes the caption rule is written.

Output: per size, wall time, peak RSS of the whole `wit curate` process tree (sampled every
0.1 s), and the funnel from OUT/stats.json (in/out of every stage, rejections by reason); then
the ratio largest / smallest. The sizes run side by side (``--serial``: one after the other):
each is its own process tree, and RSS, not time, is measured. Exit 1 when the ratio is above
1.3, or when a run did not see
distinct images: accounting broken, dedupe (URL, exact, near) dropping more than 1 % of the
pairs, anything but the planned caption.filename rejections above 1 %, or the planned ones
off their count.

    .venv/bin/python -m bench.memory                      # 10k and 100k
    .venv/bin/python -m bench.memory --sizes 2000 20000   # quicker
    .venv/bin/python -m bench.memory --serial             # one size at a time (less CPU at once)
    .venv/bin/python -m bench.memory -- --direct_running_mode=multi_processing --direct_num_workers=2

Before: measured 2026-11-27 (2 CPU cores, FnApiRunner), with the old input of 1000 distinct JPEGs
behind distinct query strings (so exact dedupe left 1000 pairs for every later stage; these
figures cover fetch/resize/hash and exact dedupe only):
  bytes inline in the records:  10k pairs 198 s, peak 1531 MB; 100k 860 s, 5657 MB: ratio 3.70
  bytes spilled (the default):  10k pairs  80 s, peak 1257 MB; 100k 575 s, 1598 MB: ratio 1.27
  + slots dataclass records:    10k pairs  97 s, peak 1255 MB; 100k 632 s, 1523 MB: ratio 1.21
  + near-dedupe prefix by size: 10k pairs  91 s, peak 1238 MB; 100k 663 s, 1488 MB: ratio 1.20
Inline, growth was ~45 KB per pair: the FnApiRunner keeps a stage's whole output in memory and
decodes a GroupByKey's input into Python objects, and the images crossed three shuffles.

Measured 2026-12-02 with this input (2 CPU cores shared with ~5 other jobs, so times are
noisy; FnApiRunner, one process; peak RSS sampled every 0.1 s; each size its own run of
this script, so the ratios below are computed by hand): every stage saw every pair (kept =
pairs - the planned caption.filename rejections; no dedupe drop, no fetch error):
  2k pairs 133 s, peak 1304 MB;  10k 447 s, 1368 MB;  20k 757 s, 1451 MB;  50k 790 s, 2109 MB
  100k: > 30 min; RSS already 2844 MB in DedupeNear (a 5-s sample, so the peak is higher)
  ratio 20k / 2k 1.11;  50k / 10k 1.54;  100k / 10k >= 2.08: MISSED
Where it grows (RSS beside py-spy stacks every 5 s): fetch is flat (1100 MB at 10k, 1190 at
50k, 1245 at 100k); DedupeNear then jumps (100k: 1245 -> 2844 MB while GroupBands' groups are
verified, transforms/lsh.py bucket_group_edges) and the memory stays with the process (2100 MB
through ScoreClip). GroupBands holds 90 band entries per image (30 rounds x 3 bands), each part
carrying the keys as a list of Python str: 4.3 KB per image pickled, 9.2 KB decoded as the
FnApiRunner's GroupingBuffer holds it (4.1 KB with the keys as one fixed-width numpy array per
part instead: measured on 10k random signatures). At 50k the highest 5-s samples were in the
writers (1690 MB): the kept ScoredImages (1.1 KB encoded, 2.0 KB decoded each) are held whole
by the Count side input and the GroupByFile of WriteShards, and again by WriteEmbeddings'.

The fixes (2026-12-02): DedupeNear's band entries are the hashes alone, one uint64 array per
(table, prefix) part (0.72 KB per image pickled and decoded, from 4.3 / 9.2 KB; measured on 10k
random signatures), the band value recomputed from the hash, and the colour guard applied after
a join of the few Hamming-verified pairs back to their signatures; the writers pack each record
into one bytes before the count's side input (WriteShards: the ScoredImage without embeddings;
WriteEmbeddings: key, model, score, vectors), and the records crossing the dedupe joins
(JoinSurvivor, JoinDrops) are packed the same way. Measured after the band and writer fixes, on
the old 160-320 px images, both sizes side by side on 2 cores under load ~15-30 from other jobs:
  10k 1303 s, peak 1459 MB;  50k 1913 s, 1801 MB: ratio 1.23 (was 1.54)
and with the dedupe joins packed too, 96-192 px images, side by side, load ~2-5:
  10k 150 s, peak 1522 MB;  50k 682 s, 1758 MB: ratio 1.16 (5.9 KB per pair of growth)
  100k 1733 s (run alone after them, load ~1-3), peak 2031 MB: 100k / 10k 1.33 -- still MISSED
  (narrowly); 5.5-5.9 KB per pair of growth (50k->100k, 10k->50k). 20k alone: 196 s, 1688 MB.
  Where (100k, RSS of the main process beside py-spy every 15 s): fetch plateau 1494 MB (the
  fetch took ~23 of the 29 minutes), the dedupe stages +350 MB in 30 s, ScoreClip +90 MB
  (1935 MB), the writers ~+100 MB. Next suspects: the N-element joins left (SameSignature holds
  every signature twice, JoinRanks every rank, JoinDrops every packed record) and ScoreClip's
  batching group (transforms/score.py).
Measured 2026-12-02 evening, with ScoreClip's batching group packed and a hot host fetched over
one key per local process (fetch.max_keys_per_host: 0), both sizes side by side under load 3-10
(a test suite and other benches running): 10k 266 s, peak 1354 MB; 100k 1586 s, peak 1860 MB:
100k / 10k 1.37 -- MISSED. Both peaks fell (1522 -> 1354, 2031 -> 1860 MB) but the growth did
not: 5.6 KB per pair, as before. Per-stage RSS at 10k and 40k (FnApiRunner._execute_bundle
wrapped, RSS and mallinfo2 after each bundle): the peak is the ScoreClip stage (+176 MB at 10k,
+217 MB at 40k), which holds the batching group's output, RunInference, and the writers' packed
rows and ListBuffers at once; after it, glibc held ~480 MB freed but not returned at 40k.
At 10k the peak is the fetch (1450 MB within 80 s, and higher the faster the loopback host
answers), so it is not a fixed base: growth per pair is the figure to watch.
Measured 2026-12-02 night, after logging mallinfo2 and every live runner buffer per bundle (the
buffers stayed under 30 MB at 40k: the growth was glibc's free-but-held heap, 407 MB at the end
of a 40k run, 148 MB already before ScoreClip) and adding pipeline/malloc_tuning.py (2 arenas,
fixed 128 KB mmap and trim thresholds: 40 MB held at 40k; 40k peak 1567 -> 1420 MB), both sizes
side by side beside a full test-suite run: 10k 273 s, peak 1274 MB; 100k 1525 s, peak 1623 MB:
100k / 10k 1.27 -- met (~3.9 KB per pair of growth, from 5.6). Every stage saw every pair
(95,000 kept, the 5,000 planned caption.filename drops).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import logging
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import WORK, SynthImageServer, run_measured

log = logging.getLogger("bench.memory")
PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_RATIO = 1.3
FILENAME_EVERY = 20  # one caption in 20 is a camera file name: caption.filename
DEDUPE_REASONS = ("dedupe.url", "dedupe.url_caption", "dedupe.image_exact", "dedupe.image_near")
SIDES = (96, 192)  # synthetic image sides: smaller than a photo (faster to make and decode); every record
#                   after ResizeImages is the same 128-px JPEG whatever the source size
MAX_UNPLANNED = 0.01  # dedupe, or any other unplanned drop, above 1 % of the pairs: images not distinct


def write_url_list(path: str, base_url: str, n: int) -> None:
    """``n`` rows: one distinct image URL each; a three-plus-word caption, or every 20th a file name."""
    urls = [f"{base_url}/img/{i:07d}.jpg" for i in range(n)]
    captions = [f"IMG_{i:05d}.JPG" if i % FILENAME_EVERY == 0 else f"a photo of generated scene number {i}"
                for i in range(n)]
    pq.write_table(pa.table({"url": urls, "caption": captions}), path)


def planned_filename_drops(n: int) -> int:
    return len(range(0, n, FILENAME_EVERY))


def curate_cmd(url_list: str, output: str, beam_args: list[str]) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", "curate", "--config", os.path.join(PROJECT, "configs", "sample.yaml"),
            "--url-list", url_list, "--output", output, "--overwrite", "--allow-private-networks",
            "--set", "fetch.concurrency=32", "--set", "fetch.per_host_concurrency=32",
            "--set", "output.samples_per_shard=1000", "--set", "score.min_score=-1.0", *beam_args]


def check_distinct(stats: dict, n: int) -> list[str]:
    """Why this run does not show every stage every pair ([] = it does)."""
    problems = []
    if stats.get("pairs_extracted") != n or not stats.get("accounting_ok"):
        problems.append(f"pairs_extracted {stats.get('pairs_extracted')} (want {n}), "
                        f"accounting_ok {stats.get('accounting_ok')}")
    by_reason = dict(stats.get("rejected_by_reason", {}))
    if by_reason.pop("caption.filename", 0) != planned_filename_drops(n):
        problems.append(f"caption.filename != {planned_filename_drops(n)} planned")
    dedupe = sum(by_reason.get(r, 0) for r in DEDUPE_REASONS)
    if dedupe > MAX_UNPLANNED * n:
        problems.append(f"dedupe dropped {dedupe} of {n}: the images are not distinct")
    if sum(by_reason.values()) > MAX_UNPLANNED * n:
        problems.append(f"unplanned rejections {by_reason}")
    return problems


def funnel_lines(stats: dict) -> list[str]:
    lines = [f"    {row['stage']:<16} in {row['in']:>7}  out {row['out']:>7}"
             + (f"  dropped {row['dropped']}" if row["dropped"] else "") for row in stats.get("funnel", [])]
    lines.append(f"    kept {stats.get('kept')}  rejected {stats.get('rejected')}  "
                 f"by reason {stats.get('rejected_by_reason')}")
    return lines


def measure(size: int, base_url: str, beam_args: list[str]) -> dict:
    work = os.path.join(WORK, "memory")
    os.makedirs(work, exist_ok=True)
    url_list = os.path.join(work, f"pairs_{size}.parquet")
    output = os.path.join(work, f"out_{size}")
    write_url_list(url_list, base_url, size)
    env = dict(os.environ, HF_HUB_OFFLINE="1", NO_ALBUMENTATIONS_UPDATE="1", PYTHONPATH=PROJECT)
    result = run_measured(curate_cmd(url_list, output, beam_args), env=env, timeout=3600)
    if result.returncode != 0:
        raise RuntimeError(f"wit curate on {size} pairs failed (rc {result.returncode}):\n{result.output[-3000:]}")
    with open(os.path.join(output, "stats.json")) as fh:
        stats = json.load(fh)
    return {"pairs": size, "seconds": result.seconds, "peak_rss_mb": result.peak_rss_mb, "stats": stats,
            "problems": check_distinct(stats, size)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--serial", action="store_true", help="one size after the other (default: side by side)")
    parser.add_argument("beam_args", nargs="*", help="Beam flags after --, passed to wit curate")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)
    with SynthImageServer(sides=SIDES) as server:
        if args.serial:
            rows = [measure(size, server.base_url, args.beam_args) for size in args.sizes]
        else:  # RSS, not time, is measured: the sizes run side by side (each its own process tree)
            with concurrent.futures.ThreadPoolExecutor(len(args.sizes)) as pool:
                rows = list(pool.map(lambda size: measure(size, server.base_url, args.beam_args), args.sizes))
    for row in rows:
        log.info("%7d pairs: %7.1f s  peak RSS %7.0f MB", row["pairs"], row["seconds"], row["peak_rss_mb"])
        for line in funnel_lines(row["stats"]):
            log.info("%s", line)
        for problem in row["problems"]:
            log.error("    not every stage saw every pair: %s", problem)
    ratio = rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]
    log.info("peak RSS ratio %d / %d pairs: %.2f (target <= %.1f)", rows[-1]["pairs"], rows[0]["pairs"], ratio,
             TARGET_RATIO)
    if ratio > TARGET_RATIO:
        log.error("missed: peak RSS grows %.2fx from %d to %d pairs", ratio, rows[0]["pairs"], rows[-1]["pairs"])
    failed = ratio > TARGET_RATIO or any(row["problems"] for row in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
