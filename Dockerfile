# Custom Dataflow worker: Beam's Python SDK image + torch + open_clip + wit-curator.
# Build and push (README "Run on Google Cloud Dataflow"):
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/wit-worker:0.1.0 .
#   docker push REGION-docker.pkg.dev/PROJECT/REPO/wit-worker:0.1.0
# then run with --sdk_container_image=<that tag> --sdk_location=container.
# The SDK image's Beam and Python versions must equal the launching machine's (pyproject pins).
FROM apache/beam_python3.11_sdk:2.77.0

ENV PIP_NO_CACHE_DIR=1 HF_HUB_DISABLE_TELEMETRY=1 NO_ALBUMENTATIONS_UPDATE=1
WORKDIR /opt/wit-curator

# torch first, pinned: PyPI's Linux wheel carries CUDA, so the same image serves the CPU
# workers and the GPU workers ScoreClip's accelerator hint asks for.
RUN pip install "torch==2.14.1" "torchvision==0.29.1"

# Then the project and its pinned dependencies (open_clip_torch among them).
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY transforms ./transforms
COPY filters ./filters
COPY trainer ./trainer
RUN pip install .

# The SDK image's entrypoint (/opt/apache/beam/boot) is kept: Dataflow starts the worker with it.
