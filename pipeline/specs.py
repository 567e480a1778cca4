"""The config -> spec boundary: the only place a config section becomes a stage's spec.

Input: a validated ``CurateConfig`` (pipeline/config.py). Output: the small frozen spec
dataclasses the stages and filters take. Specs carry no defaults of their own: the config
dataclasses and ``configs/base.yaml`` are the only defaults (tests/pipeline/test_specs.py
fails on a duplicated one).
"""

from __future__ import annotations

# --- caption (filters/caption_rules.py) ---
