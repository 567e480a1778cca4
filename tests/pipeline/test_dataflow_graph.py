"""The full curation graph, built for DataflowRunner offline: no cloud project, nothing submitted.

Verified here (apache-beam[gcp] extras installed, ``--dry_run``): DataflowRunner
translates the whole graph (every optional stage on) into its Runner v2 job with our
custom container on every environment; ScoreClip alone carries the accelerator
resource hint (its own environment: GPU workers), the crawl/fetch/write steps none;
``save_main_session`` is off, and every pickled DoFn and CombineFn of the job
unpickles in a fresh interpreter that imported nothing of ours (no ``__main__``
reliance, no unpicklable captured state); output paths are ``gs://`` throughout.

Not verified (needs a project): job submission and quota, staging to GCS, the
container image itself (built and pulled), GPU driver install on workers, worker
startup, reading/writing real buckets, autoscaling.
"""

import pickle
import subprocess
import sys

import apache_beam as beam
import pytest
from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_runner_api_pb2

from pipeline.build import Inputs, build_pipeline
from pipeline.config import CONFIG_DIR, load_config
from pipeline.runners import make_options, make_runner

pytest.importorskip("apitools", reason="apache-beam[gcp] extras (pyproject [dev]) are not installed")

IMAGE = "us-docker.pkg.dev/wit-offline/wit/worker:0.1.0"
GPU = "type:nvidia-tesla-t4;count:1;install-nvidia-driver"
DATAFLOW_ARGS = [
    "--runner=DataflowRunner", "--project=wit-offline", "--region=us-central1",
    "--temp_location=gs://wit-offline/tmp", "--staging_location=gs://wit-offline/staging",
    f"--sdk_container_image={IMAGE}", "--sdk_location=container", "--machine_type=n2-standard-8",
    "--max_num_workers=50", "--no_auth", "--dry_run=True", "--job_name=wit-offline-graph",
]
ACCELERATOR_URN = "beam:resources:accelerator:v1"


@pytest.fixture(scope="module")
def dataflow_job():
    cfg = load_config([CONFIG_DIR / "dataflow.yaml"],
                      [f"score.accelerator={GPU}", "dedupe.semantic=true", "caption.languages=[en]",
                       "balance.enabled=true"])
    options = make_options(DATAFLOW_ARGS)
    assert make_runner(options) is None  # DataflowRunner by name, not our local FnApiRunner
    p = beam.Pipeline(options=options)
    build_pipeline(p, cfg, Inputs(seed_urls=["https://example.com/"]), "gs://wit-offline/out")
    result = p.run()
    return {"options": options, "result": result, "proto": p.runner.proto_pipeline}


def test_dry_run_translates_the_whole_graph(dataflow_job):
    from apache_beam.options.pipeline_options import SetupOptions

    assert dataflow_job["result"].job is not None
    assert not dataflow_job["options"].view_as(SetupOptions).save_main_session
    names = {t.unique_name.split("/")[0] for t in dataflow_job["proto"].components.transforms.values()}
    for stage in ("FetchPages", "ExtractAltText", "FetchImages", "DedupeNear", "ScoreClip", "ClipThreshold",
                  "SemanticDedupe", "WriteShards", "WriteRejections", "WriteEmbeddings", "WriteStats"):
        assert stage in names, stage


def test_only_score_clip_asks_for_gpu_workers(dataflow_job):
    proto = dataflow_job["proto"]
    envs = proto.components.environments
    for env in envs.values():
        assert env.urn == common_urns.environments.DOCKER.urn
        assert beam_runner_api_pb2.DockerPayload.FromString(env.payload).container_image == IMAGE
    gpu_envs = {eid for eid, env in envs.items() if env.resource_hints.get(ACCELERATOR_URN) == GPU.encode()}
    assert len(gpu_envs) == 1
    on_gpu = {t.unique_name.split("/")[0] for t in proto.components.transforms.values()
              if t.environment_id in gpu_envs}
    assert on_gpu == {"ScoreClip"}


def _pickled_functions(proto) -> list:
    payloads = []
    for t in proto.components.transforms.values():
        if t.spec.urn == common_urns.primitives.PAR_DO.urn:
            payloads.append(beam_runner_api_pb2.ParDoPayload.FromString(t.spec.payload).do_fn.payload)
        elif t.spec.urn in (common_urns.composites.COMBINE_PER_KEY.urn, common_urns.composites.COMBINE_GLOBALLY.urn):
            payloads.append(beam_runner_api_pb2.CombinePayload.FromString(t.spec.payload).combine_fn.payload)
    return [p for p in payloads if p]


_LOAD_ALL = """
import pickle, sys
from apache_beam.internal import pickler
with open(sys.argv[1], "rb") as fh:
    blobs = pickle.load(fh)
loaded = [pickler.loads(b) for b in blobs]
print(len(loaded))
"""


def test_every_function_unpickles_in_a_fresh_interpreter(dataflow_job, tmp_path):
    blobs = _pickled_functions(dataflow_job["proto"])
    assert len(blobs) > 50
    path = tmp_path / "functions.pickle"
    path.write_bytes(pickle.dumps(blobs))
    done = subprocess.run([sys.executable, "-c", _LOAD_ALL, str(path)], capture_output=True, text=True,
                          timeout=300, cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.strip().splitlines()[-1]) == len(blobs)
