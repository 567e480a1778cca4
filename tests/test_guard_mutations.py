"""Every guard test fails with its guard switched off (tests/mutation/).

Each guard's tests run in a subprocess with the guard replaced by its ``off`` version
(tests/mutation/plugin.py). The subprocesses of the selected guards run a few at a time
(``WIT_MUTATION_WORKERS``, default: the usable cores): most of their time is interpreter
start-up and loopback waits, and one after another they cost six minutes of the suite.
"""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.mutation.registry import all_guards, resolve

ROOT = Path(__file__).resolve().parent.parent
GUARDS = all_guards()
_TEST = "test_guard_tests_fail_with_the_guard_off"


def test_every_guard_target_exists():
    for guard in GUARDS.values():
        resolve(guard.target)
        assert guard.tests, guard.name


def _run_with_guard_off(name: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, WIT_MUTATION=name)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", "tests.mutation.plugin",
         *GUARDS[name].tests],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _workers() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, int(os.environ.get("WIT_MUTATION_WORKERS", cores)))


@pytest.fixture(scope="module")
def runs_with_guard_off(request):
    """Futures of the subprocess runs of every guard this session selected, started at once."""
    selected = [item.callspec.params["name"] for item in request.session.items
                if getattr(item, "originalname", "") == _TEST and hasattr(item, "callspec")]
    with ThreadPoolExecutor(_workers(), thread_name_prefix="wit-mutation") as pool:
        yield {name: pool.submit(_run_with_guard_off, name) for name in selected}
        pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(GUARDS))
def test_guard_tests_fail_with_the_guard_off(name, runs_with_guard_off):
    proc = runs_with_guard_off[name].result()
    # 1: tests ran and failed. 0 would mean they pass without the guard; 2-5: they did not run.
    assert proc.returncode == 1, (f"guard {name} off: pytest exit {proc.returncode}\n"
                                  + proc.stdout[-3000:] + proc.stderr[-2000:])
