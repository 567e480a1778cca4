"""Packaging for workers: the sdist Dataflow stages with ``--setup_file``, and the worker Dockerfile.

The sdist is built by Beam's own stager code (``python -m build --sdist --no-isolation``,
what ``--setup_file=./pyproject.toml`` runs), turned into a wheel offline, and installed
with ``--no-deps`` into a clean virtualenv (dependencies are the worker image's job; here
nothing may be downloaded). The Dockerfile is checked statically: no Docker daemon or
registry is used by tests, so building the image is not verified here.
"""

import re
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import apache_beam

PROJECT = Path(__file__).resolve().parent.parent
PACKAGES = ("pipeline", "pipeline.sample", "pipeline.report", "transforms", "filters", "trainer")


def _pyproject() -> dict:
    return tomllib.loads((PROJECT / "pyproject.toml").read_text())


def test_sdist_from_beams_stager_installs_in_a_clean_venv(tmp_path):
    from apache_beam.runners.portability.stager import Stager

    sdist = Stager._build_setup_package(str(PROJECT / "pyproject.toml"), str(tmp_path))
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for module in ("pipeline/build.py", "pipeline/cli.py", "transforms/checkpoint.py", "transforms/score.py",
                   "filters/base.py", "trainer/model.py", "pipeline/report/__init__.py", "pyproject.toml"):
        assert module in names, module
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "wheels"), sdist], check=True, timeout=300)
    wheel = next((tmp_path / "wheels").glob("wit_curator-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "clean")], check=True)
    clean = tmp_path / "clean" / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(clean), "install", "-q", "--no-deps", str(wheel)],
                   check=True, timeout=300)
    probe = ("import importlib.util, sys; missing = [m for m in sys.argv[1:] if importlib.util.find_spec(m) is None];"
             "print(missing); sys.exit(1 if missing else 0)")
    done = subprocess.run([str(clean), "-c", probe, *PACKAGES], capture_output=True, text=True, cwd=str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "clean" / "bin" / "wit").exists()


def test_dockerfile_matches_the_pins():
    text = (PROJECT / "Dockerfile").read_text()
    base = re.search(r"^FROM apache/beam_python(\d+\.\d+)_sdk:(\S+)$", text, re.M)
    assert base, "FROM must be Beam's Python SDK image"
    assert base.group(1) == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert base.group(2) == apache_beam.__version__
    deps = _pyproject()["project"]["dependencies"]
    for pinned in re.findall(r'"((?:torch|torchvision)==[^"]+)"', text):
        assert pinned in deps, pinned
    for source in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for path in source.split():
            assert (PROJECT / path).exists(), path
    copied = set(re.findall(r"^COPY (\w+) ", text, re.M))
    assert {p.split(".")[0] for p in PACKAGES} <= copied
