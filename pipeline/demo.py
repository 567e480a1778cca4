"""``wit demo``: the whole job on the bundled offline sample, in one command.

Input: an output directory. Output: a curated dataset (``OUT/curated``), a short
training run on it (``OUT/train``), and a summary on stdout. Steps: generate the
sample web, serve it on 127.0.0.1, curate it with configs/sample.yaml and the
bundled scorer, write the HTML report (``OUT/report/report.html``), train the
tiny CLIP model on the shards, print the summary.
"""

from __future__ import annotations

import logging
import os
import time

from pipeline.build import Inputs
from pipeline.config import CONFIG_DIR, load_config
from pipeline.report import load_run
from pipeline.report.render_html import write_report
from pipeline.run import format_funnel, run_curation
from pipeline.sample import SampleServer, generate_site

log = logging.getLogger(__name__)

SAMPLE_CONFIG = CONFIG_DIR / "sample.yaml"


def run_demo(output_dir: str, train_steps: int = 200, batch_size: int = 64) -> dict:
    """Curate the sample web and train on it; return the figures and a printable summary."""
    from trainer.config import TrainConfig
    from trainer.loop import train

    start = time.monotonic()
    curated = os.path.join(output_dir, "curated")
    site = generate_site(seed=0)
    with SampleServer(site) as server:
        seeds = os.path.join(output_dir, "seeds.txt")
        os.makedirs(output_dir, exist_ok=True)
        with open(seeds, "w", encoding="utf-8") as fh:
            fh.write("\n".join(server.seed_urls) + "\n")
        cfg = load_config([SAMPLE_CONFIG], ["fetch.allow_private_networks=true"])
        stats = run_curation(cfg, Inputs(seeds_file=seeds), curated, overwrite=True, show_progress=True)
    curate_s = time.monotonic() - start
    report = write_report(load_run(curated), os.path.join(output_dir, "report", "report.html"))
    train_out = os.path.join(output_dir, "train")
    tcfg = TrainConfig(model=str(CONFIG_DIR / "models" / "wit-tiny.json"),
                       shards=(os.path.join(curated, "shards"),), steps=train_steps,
                       batch_size=batch_size, lr=1e-3, warmup_steps=min(50, train_steps // 5),
                       output=train_out, save_every=0, log_every=max(1, train_steps // 10))
    from trainer.threads import set_torch_threads

    set_torch_threads()  # sampled now, after the curation: the cores other work leaves free
    result = train(tcfg)
    total_s = time.monotonic() - start
    lines = [
        "", "== wit demo ==",
        f"sample web: {len(site.manifest)} <img> on {sum(1 for p in site.resources if p.endswith('.html'))} pages,"
        f" served on 127.0.0.1",
        format_funnel(stats, curated),
        f"training: {result.steps} steps, loss {result.losses[0]:.3f} -> {result.final_loss:.3f}, "
        f"{result.samples_per_s:.0f} samples/s; checkpoint {result.checkpoint_path}",
        f"time: curate {curate_s:.0f}s, total {total_s:.0f}s",
        f"report: {report}  (open it in a browser: what was kept, what was dropped and why)",
        f"        again any time: wit inspect {curated} --html REPORT.html",
    ]
    return {"stats": stats, "train": result, "seconds": total_s, "report": report,
            "summary": "\n".join(lines)}
