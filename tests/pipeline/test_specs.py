"""pipeline/specs.py, the config -> spec boundary: one default per knob, and it is the config's.

Walks the config dataclasses (pipeline/config.py) and the spec dataclasses the adapters of
pipeline/specs.py return, and fails on a duplicated default: a spec field with a default of its
own, or a knob's default written again as a keyword default in transforms/ or filters/ (a
``urls_per_key=1000`` beside ``fetch.urls_per_key: 1000``). Both drift: a knob changed in
configs/base.yaml would leave the copy behind.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import sys
import textwrap
import types
import typing

import pytest
import yaml

import filters
import transforms
from pipeline import specs
from pipeline.config import BASE_CONFIG, CurateConfig

# Specs whose module another helper owns while this boundary lands: each still carries defaults
# (strict xfail: once its defaults go, the xfail fails and the entry must be deleted here).
PENDING_SPECS: dict = {}
# Keyword defaults equal to a knob's default, in modules other work owns ("module.Owner.param").
PENDING_KNOB_COPIES: dict = {}


def _adapters() -> dict:
    return {name: fn for name, fn in vars(specs).items()
            if inspect.isfunction(fn) and fn.__module__ == specs.__name__ and not name.startswith("_")}


def _spec_classes() -> list:
    out = set()
    for fn in _adapters().values():
        returned = typing.get_type_hints(fn).get("return")
        if dataclasses.is_dataclass(returned):
            out.add(returned)
    return sorted(out, key=lambda cls: cls.__qualname__)


def _config_sections() -> dict:
    hints = typing.get_type_hints(CurateConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(CurateConfig)}


def _default(field: dataclasses.Field):
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def _knob_defaults() -> dict:
    """{knob name: {(section, default), ...}} over every config section."""
    knobs: dict = {}
    for section, cls in _config_sections().items():
        for field in dataclasses.fields(cls):
            knobs.setdefault(field.name, set()).add((section, _default(field)))
    return knobs


def _meaningful(value) -> bool:
    """An empty default ((), "", None) is "not set", not a copy of a knob's value."""
    return value is not None and not (isinstance(value, (tuple, list, str, frozenset, dict)) and not value)


def _stage_modules() -> list:
    return [importlib.import_module(f"{package.__name__}.{info.name}")
            for package in (transforms, filters) for info in pkgutil.iter_modules(package.__path__)]


def _knob_copies(modules) -> dict:
    """{"module.Owner.param": "section.knob = value"} for keyword defaults and dataclass fields
    defined in ``modules`` that repeat a knob's default under the knob's own name."""
    knobs = _knob_defaults()
    found = {}
    for module in modules:
        for owner_name, owner in vars(module).items():
            if getattr(owner, "__module__", None) != module.__name__:
                continue
            if inspect.isclass(owner) and dataclasses.is_dataclass(owner):
                params = [(f.name, _default(f)) for f in dataclasses.fields(owner)]
            elif inspect.isclass(owner) or inspect.isfunction(owner):
                try:
                    signature = inspect.signature(owner.__init__ if inspect.isclass(owner) else owner)
                except (TypeError, ValueError):
                    continue
                params = [(p.name, p.default) for p in signature.parameters.values()
                          if p.default is not inspect.Parameter.empty]
            else:
                continue
            for name, value in params:
                for section, default in knobs.get(name, ()):
                    if _meaningful(value) and type(value) is type(default) and value == default:
                        found[f"{module.__name__}.{owner_name}.{name}"] = f"{section}.{name} = {default!r}"
    return found


def test_the_adapters_cover_the_stages():
    """The adapters this boundary promises exist, and each builds its spec from the default config."""
    adapters = _adapters()
    for name in ("client_settings", "crawl_spec", "extract_spec", "warc_limits", "resize_spec", "image_spec",
                 "license_allow", "blocklist_spec", "scorer_spec", "threshold_spec", "safety_spec",
                 "safety_thresholds", "lsh_spec", "semantic_spec", "survivor_policy"):
        assert name in adapters, name
    for name, adapter in adapters.items():
        built = adapter(CurateConfig())
        returned = typing.get_type_hints(adapter).get("return")
        assert isinstance(built, returned), (name, type(built))


@pytest.mark.parametrize("spec_class", [
    pytest.param(cls, id=cls.__name__,
                 marks=[pytest.mark.xfail(strict=True, reason=PENDING_SPECS[cls])] if cls in PENDING_SPECS else [])
    for cls in _spec_classes()])
def test_spec_fields_carry_no_defaults(spec_class):
    defaulted = [f.name for f in dataclasses.fields(spec_class) if _default(f) is not dataclasses.MISSING]
    assert defaulted == [], f"{spec_class.__qualname__} defaults {defaulted}: the config holds the defaults"


def test_no_knob_default_is_written_twice():
    pending = {f"{cls.__module__}.{cls.__qualname__}." for cls in PENDING_SPECS}  # their own xfail above
    copies = {where: knob for where, knob in _knob_copies(_stage_modules()).items()
              if where not in PENDING_KNOB_COPIES and not any(where.startswith(p) for p in pending)}
    assert copies == {}, "keyword defaults repeating a knob's default (take it from a spec instead)"


def test_pending_knob_copies_are_still_there():
    """The pending list shrinks as owners fix their modules: an entry no longer found must go."""
    assert set(PENDING_KNOB_COPIES) <= set(_knob_copies(_stage_modules()))


def test_the_walk_finds_planted_copies(monkeypatch):
    """The scanner is not vacuous: knob defaults planted in a module are reported, empty ones are not."""
    planted = types.ModuleType("planted")
    monkeypatch.setitem(sys.modules, "planted", planted)
    exec(textwrap.dedent("""
        from dataclasses import dataclass

        def fetch_some(urls, urls_per_key=1000, concurrency=7, tracker_patterns=()):
            pass

        @dataclass(frozen=True)
        class SomeSpec:
            min_side: int = 32
            svg: bool = False
    """), planted.__dict__)
    for obj in (planted.fetch_some, planted.SomeSpec):
        obj.__module__ = "planted"
    assert _knob_copies([planted]) == {"planted.fetch_some.urls_per_key": "fetch.urls_per_key = 1000",
                                       "planted.SomeSpec.min_side": "image.min_side = 32",
                                       "planted.SomeSpec.svg": "resize.svg = False"}


def test_config_dataclass_defaults_match_base_yaml():
    """The two places a default may live agree: configs/base.yaml and the config dataclasses."""
    base = yaml.safe_load(BASE_CONFIG.read_text(encoding="utf-8"))
    for section, cls in _config_sections().items():
        values = base.get(section) or {}
        for field in dataclasses.fields(cls):
            assert field.name in values, f"{section}.{field.name} missing from configs/base.yaml"
            default, written = _default(field), values[field.name]
            if isinstance(default, tuple):
                written = tuple(written or ())
            assert written == default or (written is None and default == ""), (
                f"{section}.{field.name}: base.yaml {written!r} != dataclass {default!r}")


def test_one_default_user_agent():
    """The User-Agent's only default is fetch.user_agent; the client and the archive reader get it."""
    cfg = CurateConfig()
    assert specs.client_settings(cfg).user_agent == cfg.fetch.user_agent
    assert specs.warc_limits(cfg).agent == specs.extract_spec(cfg).bot_token == "wit-curator"
