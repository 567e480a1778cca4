"""Run FetchPages in a TestPipeline and hand back what it emitted (tests of the crawl)."""

from __future__ import annotations

import base64
import os
import pickle
import tempfile
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline

from pipeline.config import CrawlConfig, CurateConfig, FetchConfig
from pipeline.metrics import NAMESPACE
from pipeline.records import Page
from pipeline.runners import make_runner
from pipeline.specs import crawl_spec
from transforms.crawl_frontier import FetchPages


@dataclass
class Crawled:
    results: list  # Page and PageFailure records, sorted by URL (pages before failures of one URL)
    counters: dict  # wit counters by name

    @property
    def pages(self) -> list:
        return [r for r in self.results if isinstance(r, Page)]

    @property
    def failures(self) -> list:
        return [r for r in self.results if not isinstance(r, Page)]


def _encode(record) -> str:
    return base64.b64encode(pickle.dumps(record)).decode("ascii")


def crawl(seeds, settings, beam_args=(), fetch_cfg=None, **crawl_kwargs) -> Crawled:
    """FetchPages over ``seeds`` on the FnApiRunner, its spec from ``CrawlConfig(**crawl_kwargs)`` and
    ``fetch_cfg`` (a FetchConfig; the default one when None); ``beam_args``: e.g. two worker processes."""
    spec = crawl_spec(CurateConfig(crawl=CrawlConfig(**crawl_kwargs), fetch=fetch_cfg or FetchConfig()))
    options = PipelineOptions(list(beam_args))
    p = TestPipeline(runner=make_runner(options), options=options)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "results")
        pages, failures = (p | "Seeds" >> beam.Create(list(seeds))
                           | "FetchPages" >> FetchPages(spec, settings))
        ((pages, failures) | "Results" >> beam.Flatten() | "Encode" >> beam.Map(_encode)
         | "Write" >> beam.io.WriteToText(out, shard_name_template="", num_shards=1))
        result = p.run()
        result.wait_until_finish()
        with open(out, encoding="ascii") as fh:
            results = [pickle.loads(base64.b64decode(line)) for line in fh if line.strip()]
    counters: dict = {}
    for c in result.metrics().query()["counters"]:
        if c.key.metric.namespace == NAMESPACE:
            counters[c.key.metric.name] = counters.get(c.key.metric.name, 0) + c.committed
    results.sort(key=lambda r: (r.url, not isinstance(r, Page), getattr(r, "detail", "")))
    return Crawled(results, counters)
