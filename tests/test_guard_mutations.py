"""Every guard test fails with its guard switched off (tests/mutation/)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mutation.registry import all_guards, resolve

ROOT = Path(__file__).resolve().parent.parent
GUARDS = all_guards()


def test_every_guard_target_exists():
    for guard in GUARDS.values():
        resolve(guard.target)
        assert guard.tests, guard.name


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(GUARDS))
def test_guard_tests_fail_with_the_guard_off(name):
    guard = GUARDS[name]
    env = dict(os.environ, WIT_MUTATION=name)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", "tests.mutation.plugin",
         *guard.tests],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    # 1: tests ran and failed. 0 would mean they pass without the guard; 2-5: they did not run.
    assert proc.returncode == 1, (f"guard {name} off: pytest exit {proc.returncode}\n"
                                  + proc.stdout[-3000:] + proc.stderr[-2000:])
