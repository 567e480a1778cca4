"""Stage specs for tests: pipeline/specs.py's adapters over the default config, some fields changed.

Specs carry no defaults of their own (tests/pipeline/test_specs.py); a test that wants "the defaults
but ``retries=0``" writes ``spec_with(client_settings, retries=0)`` and gets configs/base.yaml's
dataclass defaults for everything else, the way a real run would.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from pipeline.config import CurateConfig


def spec_with(adapter: Callable, **fields):
    """``adapter(CurateConfig())`` with ``fields`` replaced (spec field names, not config keys)."""
    return replace(adapter(CurateConfig()), **fields)
