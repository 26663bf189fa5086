"""Package names that load on first use, each from the module that defines it."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_attributes(package: str, names: Mapping[str, Sequence[str]]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package`: `names` maps each module to the names it gives.

    A name is imported from its module on first use and then kept as a plain attribute,
    so the package costs nothing until one of them is asked for.
    """
    where = {name: module for module, given in names.items() for name in given}
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
