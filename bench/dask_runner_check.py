"""Is Beam's DaskRunner a runner this pipeline can use? Four tiny pipelines, DirectRunner beside it.

DirectRunner here is what ``wit`` runs for it: Beam's FnApiRunner (pipeline/runners.py).

Each pipeline exercises one thing the curation graph relies on and writes what reached its
sink(s) to files (a sink that never ran writes nothing):

1. ``read``: a ``beam.io.Read`` of a small ``BoundedSource`` (``ReadSeeds`` reads a seeds file
   with ``beam.io.ReadFromText``, a ``Read``) -> Map -> sink.
2. ``finish_bundle``: a DoFn that buffers elements and emits them in ``finish_bundle`` (the
   per-host fetcher, transforms/host_fetch.py, emits the downloads still in flight when a bundle
   ends there, and DedupeNear's band gathering, transforms/dedupe.py, its per-bundle arrays).
3. ``multi_output``: a ParDo with a main and a tagged output (every stage's ``(ok, rejected)``),
   each consumed by its own Map, both flattened into one sink.
4. ``two_sinks``: one input, two independent sinks (shards, rejections, stats are three).

Prints, for each check and runner, what each sink received, and a verdict per check. Exits 0 when
DaskRunner gets at least one check wrong (what docs/scale.md says), 1 when DaskRunner agrees with
DirectRunner on all four (then the doc is out of date and must say so), 2 when dask is missing.

    PYTHONPATH=/tmp/daskpkgs .venv/bin/python bench/dask_runner_check.py

Needs ``dask[distributed]`` (Beam 2.77's extra asks for dask and distributed >= 2024.4.2); it is
not a project dependency, so install it out of the way:
``.venv/bin/pip install --target /tmp/daskpkgs "dask[distributed]"``.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import sys
import tempfile

import apache_beam as beam
from apache_beam.io import iobase
from apache_beam.io.range_trackers import OffsetRangeTracker

from pipeline.runners import make_options, make_runner


class _Numbers(iobase.BoundedSource):
    """0..n-1 as a bounded source (what Beam's file sources are underneath)."""

    def __init__(self, n: int):
        self.n = n

    def estimate_size(self):
        return self.n

    def get_range_tracker(self, start_position, stop_position):
        return OffsetRangeTracker(start_position or 0, self.n if stop_position is None else stop_position)

    def read(self, range_tracker):
        for i in range(range_tracker.start_position(), range_tracker.stop_position()):
            if not range_tracker.try_claim(i):
                return
            yield i

    def split(self, desired_bundle_size, start_position=None, stop_position=None):
        start, stop = start_position or 0, self.n if stop_position is None else stop_position
        yield iobase.SourceBundle(stop - start, self, start, stop)


class _RecordTo(beam.DoFn):
    """Sink: appends each element as a JSON line to ``directory/<uuid>.jsonl`` (one file per bundle)."""

    def __init__(self, directory: str):
        self.directory = directory

    def start_bundle(self):
        self._seen = []

    def process(self, element):
        self._seen.append(element)

    def finish_bundle(self):
        if self._seen:
            os.makedirs(self.directory, exist_ok=True)
            fd, path = tempfile.mkstemp(dir=self.directory, suffix=".jsonl")
            with os.fdopen(fd, "w") as fh:
                fh.writelines(json.dumps(e) + "\n" for e in self._seen)


def _received(directory: str) -> list:
    out = []
    for path in glob.glob(os.path.join(directory, "*.jsonl")):
        with open(path) as fh:
            out.extend(json.loads(line) for line in fh)
    return sorted(out, key=repr)


class _EmitInFinishBundle(beam.DoFn):
    """Buffers and emits in finish_bundle, as HostKeyedFetchFn does with downloads still in flight."""

    def start_bundle(self):
        self._buffer = []

    def process(self, element):
        self._buffer.append(element)

    def finish_bundle(self):
        from apache_beam.transforms.window import GlobalWindow
        from apache_beam.utils.windowed_value import WindowedValue

        for e in self._buffer:
            yield WindowedValue(e * 10, 0, [GlobalWindow()])


def _odd_or_even(x):
    if x % 2:
        yield beam.pvalue.TaggedOutput("odd", x)
    else:
        yield x


def _check_read(p, out):
    p | "Read" >> beam.io.Read(_Numbers(5)) | "Plus100" >> beam.Map(lambda x: x + 100) \
      | "Sink" >> beam.ParDo(_RecordTo(os.path.join(out, "sink")))


def _check_finish_bundle(p, out):
    p | "Create" >> beam.Create([1, 2, 3]) | "Buffer" >> beam.ParDo(_EmitInFinishBundle()) \
      | "Sink" >> beam.ParDo(_RecordTo(os.path.join(out, "sink")))


def _check_multi_output(p, out):
    # Both consumers end in one sink (through Flatten), so "only the last sink runs" cannot hide them.
    split = p | "Create" >> beam.Create([1, 2, 3, 4]) | "Split" >> beam.ParDo(_odd_or_even).with_outputs(
        "odd", main="even")
    even = split.even | "TagEven" >> beam.Map(lambda x: f"even:{x}")
    odd = split.odd | "TagOdd" >> beam.Map(lambda x: f"odd:{x}")
    (even, odd) | "Both" >> beam.Flatten() | "Sink" >> beam.ParDo(_RecordTo(os.path.join(out, "sink")))


def _check_two_sinks(p, out):
    numbers = p | "Create" >> beam.Create([1, 2, 3])
    numbers | "FirstSink" >> beam.ParDo(_RecordTo(os.path.join(out, "first")))
    numbers | "Doubled" >> beam.Map(lambda x: 2 * x) | "SecondSink" >> beam.ParDo(
        _RecordTo(os.path.join(out, "second")))


CHECKS = {
    "read": (_check_read, ["sink"]),
    "finish_bundle": (_check_finish_bundle, ["sink"]),
    "multi_output": (_check_multi_output, ["sink"]),
    "two_sinks": (_check_two_sinks, ["first", "second"]),
}


def _dask_runner():
    from apache_beam.runners.dask.dask_runner import DaskRunner

    return DaskRunner()


def run_check(name: str, runner: str, root: str) -> dict:
    """{sink: sorted elements} of one check on one runner, or {"error": "..."} if it raised."""
    build, sinks = CHECKS[name]
    out = os.path.join(root, runner, name)
    extra = ["--dask_npartitions=2"] if runner == "DaskRunner" else []
    opts = make_options([f"--runner={runner}", *extra])
    try:
        # make_runner: the project's local runner (FnApiRunner, never Prism).
        with beam.Pipeline(runner=_dask_runner() if runner == "DaskRunner" else make_runner(opts),
                           options=opts) as p:
            build(p, out)
    except Exception as exc:  # the evidence is what happened, including a crash
        return {"error": f"{type(exc).__name__}: {str(exc)[:160]}"}
    return {s: _received(os.path.join(out, s)) for s in sinks}


def main() -> int:
    logging.basicConfig(level=logging.ERROR, force=True)
    try:
        import dask
        import distributed
    except ImportError:
        print("dask[distributed] is not importable; install it with "
              "`.venv/bin/pip install --target /tmp/daskpkgs \"dask[distributed]\"` and set PYTHONPATH")
        return 2
    logging.getLogger("distributed").setLevel(logging.CRITICAL)  # its own handlers; teardown noise
    print(f"apache_beam {beam.__version__}, dask {dask.__version__}, distributed {distributed.__version__}")
    wrong = []
    with tempfile.TemporaryDirectory() as root:
        for name in CHECKS:
            direct = run_check(name, "DirectRunner", root)
            dask_out = run_check(name, "DaskRunner", root)
            ok = dask_out == direct
            print(f"\n[{name}]")
            print(f"  DirectRunner: {direct}")
            print(f"  DaskRunner:   {dask_out}")
            print(f"  verdict: {'same' if ok else 'DaskRunner WRONG'}")
            if not ok:
                wrong.append(name)
    print(f"\nDaskRunner wrong on {len(wrong)}/{len(CHECKS)} checks: {', '.join(wrong) or 'none'}")
    if not wrong:
        print("DaskRunner agrees with DirectRunner on every check: docs/scale.md must be updated.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
