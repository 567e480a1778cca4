"""The guard tables: ``Guard`` entries collected from ``tests/mutation/guards_*.py``."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable

import tests.mutation as _package


@dataclass(frozen=True)
class Guard:
    """One guard: ``target`` ("package.module:attr" or "package.module:Class.attr") is replaced
    by ``off`` while ``tests`` (pytest node ids, relative to the repository root) run; at
    least one of them must then fail."""

    name: str
    target: str
    off: Callable[..., Any]
    tests: tuple


def all_guards() -> dict[str, Guard]:
    found: dict[str, Guard] = {}
    for info in pkgutil.iter_modules(_package.__path__):
        if not info.name.startswith("guards_"):
            continue
        module = importlib.import_module(f"tests.mutation.{info.name}")
        for guard in module.GUARDS:
            if guard.name in found:
                raise ValueError(f"guard {guard.name!r} named twice")
            found[guard.name] = guard
    return found


def resolve(target: str) -> tuple[Any, str]:
    """(object holding the attribute, attribute name) of a target."""
    module_name, _, path = target.partition(":")
    owner: Any = importlib.import_module(module_name)
    *parents, attr = path.split(".")
    for name in parents:
        owner = getattr(owner, name)
    if not hasattr(owner, attr):
        raise AttributeError(f"{target}: no such attribute")
    return owner, attr
