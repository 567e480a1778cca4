"""pytest plugin: with ``WIT_MUTATION=<guard name>``, that guard is switched off for the session."""

from __future__ import annotations

import os

from tests.mutation.registry import all_guards, resolve


def pytest_configure(config):
    name = os.environ.get("WIT_MUTATION")
    if not name:
        return
    guard = all_guards()[name]
    owner, attr = resolve(guard.target)
    setattr(owner, attr, guard.off)
