"""Rhai's standard library: every built-in function, keyed by (name, number of arguments)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.rhai.runtime import Native, NoMatch

Table = dict[tuple[str, int], Native]


class Lib:
    """Collects natives with a decorator: ``@lib.fn("len", 1)``."""

    def __init__(self) -> None:
        self.table: Table = {}

    def fn(
        self, name: str, *arities: int, mut: bool = False, ctx: bool = False
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register the decorated function under ``name`` for each arity (-1: any)."""

        def deco(func: Callable[..., Any]) -> Callable[..., Any]:
            for n in arities:
                key = (name, n)
                prev = self.table.get(key)
                if prev is not None and (prev.mut != mut or prev.ctx != ctx):
                    raise ValueError(f"conflicting registrations of {name}/{n}")
                if prev is not None:
                    self.table[key] = Native(_chain(prev.fn, func), mut, ctx)
                else:
                    self.table[key] = Native(func, mut, ctx)
            return func

        return deco


def _chain(first: Callable[..., Any], second: Callable[..., Any]) -> Callable[..., Any]:
    """Try ``first``; on NoMatch try ``second`` (overloads from different modules)."""

    def run(*args: Any) -> Any:
        try:
            return first(*args)
        except NoMatch:
            return second(*args)

    return run


def stdlib() -> Table:
    """A fresh table of every standard function."""
    from core.rhai.stdlib import arrays, blobs, core_fns, maps, math_fns, strings

    table: Table = {}
    for module in (core_fns, math_fns, strings, arrays, maps, blobs):
        for key, native in module.lib.table.items():
            prev = table.get(key)
            if prev is not None:
                if (prev.mut, prev.ctx) != (native.mut, native.ctx):
                    raise ValueError(f"conflicting registrations of {key[0]}/{key[1]}")
                table[key] = Native(_chain(prev.fn, native.fn), prev.mut, prev.ctx)
            else:
                table[key] = native
    return table
