"""Training throughput and loss: `wit train` vs open_clip_train on the same shards, in one run.

Writes generated scene shards (pipeline.sample.scorer.write_training_shards: our shard format,
sizes.json included), then trains the same model (configs/models/wit-tiny.json) with the same
batch size, steps, optimiser settings, device, precision, thread count and loader workers:

  ours:            python -m trainer.cli train ...
  open_clip_train: python -m trainer.interop --model-config MODEL -- --dataset-type webdataset
                   --train-data 'DIR/{00000..0000N}.tar'   (no --train-num-samples: sizes.json)

and prints samples/s for both (steps 2..N, so start-up is left out of both), the ratio and
both loss curves. The shard count is steps x batch so that open_clip_train's one epoch is
exactly ``steps`` steps. On a shared machine wall-clock rates drift with other people's load:
``--repeats N`` runs the pair N times in alternating order (AB BA AB ...) and the ratio uses
each trainer's best run (the least disturbed), with the medians beside it.

    .venv/bin/python bench/train_vs_open_clip.py [--steps 50] [--batch-size 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import WORK, run_measured  # noqa: E402

PY = sys.executable
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEP_LINE = re.compile(r"Train Epoch: \d+ \[\s*(\d+)/\d+ .*?Batch \(t\): ([\d.]+).*? Loss: ([\d.]+)")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="configs/models/wit-tiny.json")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=1, help="DataLoader workers, both trainers")
    p.add_argument("--threads", type=int, default=1,
                   help="OMP_NUM_THREADS for both (1: a shared 2-core machine; see README)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--repeats", type=int, default=3, help="run the pair this many times, "
                   "alternating which goes first")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=10)
    return p.parse_args(argv)


def make_shards(directory: str, n: int, per_shard: int) -> None:
    from pipeline.sample.scorer import write_training_shards

    if os.path.isfile(os.path.join(directory, "sizes.json")):
        with open(os.path.join(directory, "sizes.json")) as fh:
            if sum(json.load(fh).values()) == n:
                return
        shutil.rmtree(directory)
    write_training_shards(directory, n, seed=2024, per_shard=per_shard)


def cpu_seconds_of(run) -> tuple:
    """``run()``'s result and the CPU seconds (user + sys) of the process tree it waited for."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = run()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return result, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run_ours(a: argparse.Namespace, shards: str, out: str, env: dict) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [PY, "-m", "trainer.cli", "train", "--shards", shards, "--output", out,
           "--model", a.model, "--steps", str(a.steps), "--batch-size", str(a.batch_size)]
    for kv in (f"lr={a.lr}", f"warmup_steps={a.warmup}", "weight_decay=0.1", "grad_clip=1.0",
               f"workers={a.workers}", f"device={a.device}", f"precision={a.precision}",
               "log_every=1", "save_every=0", "seed=0", "tensorboard=false"):
        cmd += ["--set", kv]
    result, cpu_s = cpu_seconds_of(lambda: run_measured(cmd, env=env))
    if result.returncode != 0:
        raise RuntimeError(f"wit train failed:\n{result.output[-3000:]}")
    summary = json.loads(result.output[result.output.index("{\n"):])
    with open(os.path.join(out, "train_log.csv")) as fh:
        losses = [float(line.split(",")[1]) for line in fh.read().splitlines()[1:]]
    return {"samples_per_s": summary["samples_per_s"], "losses": losses,
            "wall_s": result.seconds, "peak_rss_mb": result.peak_rss_mb, "cpu_s": cpu_s}


def run_open_clip_train(a: argparse.Namespace, shards: str, out: str, env: dict) -> dict:
    from trainer.interop import brace_pattern

    shutil.rmtree(out, ignore_errors=True)
    precision = {"fp32": "fp32", "bf16": "amp_bf16"}[a.precision]
    cmd = [PY, "-m", "trainer.interop", "--model-config", a.model, "--",
           "--train-data", brace_pattern(shards), "--dataset-type", "webdataset",
           "--batch-size", str(a.batch_size), "--epochs", "1", "--workers", str(a.workers),
           "--lr", str(a.lr), "--warmup", str(a.warmup), "--wd", "0.1", "--beta1", "0.9",
           "--beta2", "0.98", "--eps", "1e-6", "--grad-clip-norm", "1.0", "--seed", "0",
           "--precision", precision, "--device", a.device, "--logs", out, "--name", "bench",
           "--log-every-n-steps", "1", "--save-frequency", "0", "--report-to", ""]
    result, cpu_s = cpu_seconds_of(lambda: run_measured(cmd, env=env))
    if result.returncode != 0:
        raise RuntimeError(f"open_clip_train failed:\n{result.output[-3000:]}")
    with open(os.path.join(out, "bench", "out.log")) as fh:
        steps = [(int(s), float(t), float(loss)) for s, t, loss in STEP_LINE.findall(fh.read())]
    if len(steps) != a.steps:
        raise RuntimeError(f"open_clip_train ran {len(steps)} steps, expected {a.steps}")
    batch_times = [t for _, t, _ in steps[1:]]  # step 1 pays for start-up, as ours leaves out
    return {"samples_per_s": a.batch_size / statistics.mean(batch_times),
            "losses": [loss for _, _, loss in steps], "wall_s": result.seconds,
            "peak_rss_mb": result.peak_rss_mb, "cpu_s": cpu_s}


def report(a: argparse.Namespace, ours: list[dict], theirs: list[dict]) -> str:
    best = {"wit train": max(ours, key=lambda r: r["samples_per_s"]),
            "open_clip_train": max(theirs, key=lambda r: r["samples_per_s"])}
    runs = {"wit train": ours, "open_clip_train": theirs}
    lines = [f"model {a.model}, batch {a.batch_size}, {a.steps} steps, device {a.device}, "
             f"{a.precision}, {a.workers} loader worker(s), OMP_NUM_THREADS={a.threads}, "
             f"{a.repeats} run(s) each, alternating order",
             f"{'':16}{'best samples/s':>15}{'median':>8}{'all runs':>26}{'peak RSS MB':>13}"
             f"{'CPU s/run':>11}"]
    for name, rs in runs.items():
        rates = [r["samples_per_s"] for r in rs]
        lines.append(f"{name:16}{best[name]['samples_per_s']:>15.1f}"
                     f"{statistics.median(rates):>8.1f}"
                     f"{' '.join(f'{x:.1f}' for x in rates):>26}"
                     f"{max(r['peak_rss_mb'] for r in rs):>13.0f}"
                     f"{statistics.median(r['cpu_s'] for r in rs):>11.1f}")
    ratio = best["wit train"]["samples_per_s"] / best["open_clip_train"]["samples_per_s"]
    median_ratio = (statistics.median(r["samples_per_s"] for r in ours)
                    / statistics.median(r["samples_per_s"] for r in theirs))
    lines.append(f"ratio (wit / open_clip_train): {ratio:.2f}x best-of-{a.repeats}, "
                 f"{median_ratio:.2f}x by medians (target >= 1.0x)")
    lines.append("CPU s/run: user+sys of the whole process tree (start-up included), median; "
                 "less disturbed by other load than wall-clock rates")
    lines.append("loss curves, each trainer's best run (step: wit train | open_clip_train):")
    every = max(1, a.steps // 12)
    curve_a, curve_b = best["wit train"]["losses"], best["open_clip_train"]["losses"]
    for i in list(range(0, a.steps, every)) + ([a.steps - 1] if (a.steps - 1) % every else []):
        lines.append(f"  {i + 1:4d}: {curve_a[i]:.4f} | {curve_b[i]:.4f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    a = parse_args(argv)
    work = os.path.join(WORK, "train_vs_open_clip")
    shards = os.path.join(work, f"shards_{a.steps * a.batch_size}")
    make_shards(shards, a.steps * a.batch_size, per_shard=max(a.batch_size, 1000))
    env = dict(os.environ, HF_HUB_OFFLINE="1", WANDB_MODE="disabled",
               OMP_NUM_THREADS=str(a.threads), PYTHONPATH=ROOT)
    ours, theirs = [], []
    for r in range(a.repeats):
        pair = [lambda: ours.append(run_ours(a, shards, os.path.join(work, "ours"), env)),
                lambda: theirs.append(run_open_clip_train(
                    a, shards, os.path.join(work, "open_clip_train"), env))]
        for run in (pair if r % 2 == 0 else pair[::-1]):
            run()
    print(report(a, ours, theirs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
