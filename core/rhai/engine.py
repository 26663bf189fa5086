"""The Rhai `Engine`: limits, registered functions and namespaces, print/debug, running scripts."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from core.config import RhaiConfig
from core.rhai import ast as A
from core.rhai.compiler import Compiler, compile_function
from core.rhai.errors import ErrorLimit, Pos, RhaiError, RhaiRuntimeError
from core.rhai.parser import parse
from core.rhai.runtime import DynScope, Native, ReturnEx, Runtime, stack_overflow
from core.rhai.stdlib import stdlib
from core.rhai.values import COPY_METER, MUTABLE, own

_STDLIB = stdlib()


# Rhai's Engine limits are the config's [rhai] section itself (0 means no limit; the
# defaults suit untrusted scripts): one list of limits, documented once.
Limits = RhaiConfig


# Rhai's own defaults (Engine::new()): no operation or size limits, bounded nesting.
UNLIMITED = Limits(
    max_operations=0, max_string_size=0, max_array_size=0, max_map_size=0, max_variables=0
)


def _print(text: str) -> None:
    print(text, flush=True)


def _debug(text: str, pos: Pos) -> None:
    where = f"{pos[0]}:{pos[1]}" if pos[0] else "?"
    print(f"{where} | {text}", flush=True)


class Engine:
    """Runs Rhai scripts: ``Engine().eval("40 + 2")``.

    A script reaches nothing outside itself except through functions registered here
    (`register_fn`, `register_namespace`): no files, network or processes.
    """

    def __init__(
        self,
        limits: Limits | None = None,
        on_print: Callable[[str], None] | None = None,
        on_debug: Callable[[str, Pos], None] | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.natives: dict[tuple[str, int], Native] = dict(_STDLIB)
        self.namespaces: dict[str, dict[str, Native]] = {}
        self.namespace_resolver: Callable[[str, str], Native | None] | None = None
        self.on_print = on_print or _print
        self.on_debug = on_debug or _debug

    # -- registration ----------------------------------------------------------------------
    def register_fn(self, name: str, func: Callable[..., Any], arity: int | None = None) -> None:
        """Make ``func`` callable from scripts as ``name(..)`` (arity from its signature)."""
        if arity is None:
            import inspect

            params = inspect.signature(func).parameters.values()
            variadic = any(p.kind is p.VAR_POSITIONAL for p in params)
            arity = -1 if variadic else len(params)
        self.natives[(name, arity)] = Native(func)

    def register_namespace(self, ns: str, functions: dict[str, Callable[..., Any]]) -> None:
        """Make ``ns::name(..)`` call ``functions[name]``."""
        table = self.namespaces.setdefault(ns, {})
        for name, func in functions.items():
            table[name] = Native(func)

    def namespace_lookup(self, ns: str, name: str) -> Native | None:
        """The native behind ``ns::name``, if any."""
        found = self.namespaces.get(ns, {}).get(name)
        if found is None and self.namespace_resolver is not None:
            found = self.namespace_resolver(ns, name)
        return found

    # -- running ---------------------------------------------------------------------------
    def compile(self, script: str) -> A.Script:
        """Parse a script (raises `RhaiParseError`)."""
        return parse(script, self.limits.max_expr_depth, self.limits.max_function_expr_depth)

    def new_runtime(self) -> Runtime:
        """A fresh run state; call ``stop()`` on it from another thread to end the run."""
        return Runtime(self)

    def eval(self, script: str, rt: Runtime | None = None) -> Any:
        """Run a script and return its value (raises a `RhaiError` subclass)."""
        ast = self.compile(script)
        return self.run_ast(ast, rt)

    def run_ast(self, ast: A.Script, rt: Runtime | None = None) -> Any:
        """Run a parsed script."""
        rt = rt or self.new_runtime()
        rt.fn_defs.update(ast.functions)
        rt.compile_fn = lambda fndef: compile_function(rt, fndef)
        needed = (self.limits.max_call_levels or 1000) * 40 + 3000
        if sys.getrecursionlimit() < needed:
            sys.setrecursionlimit(needed)
        outer, COPY_METER.rt = COPY_METER.rt, rt
        try:
            main = compile_function(rt, ast.main, is_main=True)
            value = main.body([None] * main.size)
        except ReturnEx as e:  # a top-level `return`
            value = e.value
        except RecursionError:
            raise stack_overflow("the script nests too deeply") from None
        except MemoryError:
            raise ErrorLimit(
                "ErrorDataTooLarge", "memory", "Out of memory building a value"
            ) from None
        except (TypeError, ValueError, AttributeError, IndexError, KeyError, OverflowError,
                ZeroDivisionError) as exc:  # fmt: skip
            # An interpreter bug: still a Rhai error to the caller, with what went wrong.
            raise RhaiRuntimeError(
                f"internal error: {type(exc).__name__}: {exc}", None, "ErrorSystem"
            ) from exc
        finally:
            COPY_METER.rt = outer
        return value

    def eval_in(self, rt: Runtime, code: str, scope: DynScope, top: bool = False) -> Any:
        """``eval(code)``: run code in the caller's scope, so its variables stay defined."""
        ast = self.compile(code)
        for key, fndef in ast.functions.items():
            rt.fn_defs[key] = fndef
            rt.functions.pop(key, None)
        comp = Compiler(rt, ast.main, dynamic=True, is_main=top)
        body = comp.block(ast.main.body.stmts, tail=True, scoped=False)
        try:
            v = body(scope)
        except ReturnEx as e:
            v = e.value
        return own(v) if type(v) in MUTABLE else v


def eval(script: str) -> Any:
    """Run ``script`` with a default `Engine` and return its value as a Python value.

    Raises:
        RhaiError: any parse or runtime error (the subclass names Rhai's error kind).
    """
    return Engine(UNLIMITED).eval(script)


__all__ = ["Engine", "Limits", "RhaiError", "eval"]
