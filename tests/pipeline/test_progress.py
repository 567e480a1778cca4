import io
import logging
import time

import apache_beam as beam
import pytest

from pipeline import metrics
from pipeline.build import Inputs
from pipeline.config import load_config
from pipeline.progress import CurateProgress, Snapshot, format_line, progress_for, snapshot
from pipeline.run import run_curation
from pipeline.runners import make_options
from pipeline.sample import SampleServer, generate_site
from tests.conftest import local_test_pipeline


def test_snapshot_counts_since_the_baseline():
    baseline = {"pages_fetched": 5, "fetch.http_4xx": 1}
    counts = {"pages_fetched": 8, "pairs_extracted": 40, "images_fetched": 30, "samples_written": 20,
              "fetch.http_4xx": 3, "caption.empty": 4, "crawl.http_4xx": 1}
    snap = snapshot(counts, baseline, elapsed_s=10.0)
    assert snap == Snapshot(pages=3, pages_failed=1, pairs=40, images=30, kept=20, dropped=6, elapsed_s=10.0)
    assert snap.images_per_s == 3.0


def test_format_line():
    line = format_line(Snapshot(pages=3, pages_failed=1, pairs=40, images=30, kept=20, dropped=6, elapsed_s=3725))
    assert line == "pages 3 (1 failed) | pairs 40 | images 30 | kept 20 | dropped 6 | 0.0 img/s | 1:02:05"


class _Counts:
    def __init__(self):
        self.values = {"pages_fetched": 0}

    def __call__(self):
        return dict(self.values)


def test_plain_lines_when_not_a_terminal(caplog):
    counts = _Counts()
    with caplog.at_level(logging.INFO, logger="pipeline.progress"):
        with CurateProgress(stream=io.StringIO(), interval=0.05, counts=counts):
            counts.values["pages_fetched"] = 7
            time.sleep(0.3)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress: ")]
    assert len(lines) >= 3 and lines[-1].startswith("progress: pages 7 |")


class _FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_live_line_on_a_terminal(caplog):
    stream, counts = _FakeTerminal(), _Counts()
    with caplog.at_level(logging.INFO, logger="pipeline.progress"):
        with CurateProgress(stream=stream, counts=counts):
            counts.values["pages_fetched"] = 2
            time.sleep(0.6)
    assert "pages 2 |" in stream.getvalue()  # drawn in place by rich
    assert "\x1b[" in stream.getvalue()  # with terminal control codes
    assert caplog.records[-1].getMessage().startswith("progress: pages 2 |")


class _Count(beam.DoFn):
    def process(self, x):
        metrics.inc(metrics.Counter.PAGES_FETCHED)
        yield x


def test_dofn_counts_reach_the_tally_in_process():
    before = metrics.local_counts().get("pages_fetched", 0)
    with local_test_pipeline() as p:
        _ = p | beam.Create(range(5)) | beam.ParDo(_Count())
    assert metrics.local_counts()["pages_fetched"] - before == 5


def test_progress_only_where_the_tally_sees_the_workers():
    assert isinstance(progress_for(make_options([]), local=True), CurateProgress)
    assert not isinstance(progress_for(make_options([]), local=False), CurateProgress)
    assert not isinstance(progress_for(make_options([]), local=True, enabled=False), CurateProgress)
    multi = make_options(["--direct_running_mode=multi_processing"])
    assert not isinstance(progress_for(multi, local=True), CurateProgress)


@pytest.mark.slow
def test_final_progress_line_matches_stats_json(tmp_path, caplog):
    cfg = load_config([], ["fetch.allow_private_networks=true", "score.enabled=false", "crawl.max_depth=1"])
    with SampleServer(generate_site(seed=0, n_pages=2)) as server, \
            caplog.at_level(logging.INFO, logger="pipeline.progress"):
        stats = run_curation(cfg, Inputs(seed_urls=server.seed_urls), str(tmp_path / "out"), show_progress=True)
    final = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress: ")][-1]
    assert final.startswith(f"progress: pages {stats['pages']['fetched']}")
    assert f"| pairs {stats['pairs_extracted']} |" in final
    assert f"| kept {stats['kept']} | dropped {stats['rejected']} |" in final
