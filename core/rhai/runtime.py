"""The state of one run: limits, counters, functions, and calling script and native functions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.rhai.errors import ErrorLimit, ErrorTerminated, Pos, RhaiError, RhaiRuntimeError, runtime
from core.rhai.values import MUTABLE, Cell, FnPtr, own, type_name

Ev = Callable[[Any], Any]


def at_pos(ev: Ev, pos: Pos) -> Ev:
    """Give errors raised by ``ev`` this position when they have none."""

    def run(f: Any) -> Any:
        try:
            return ev(f)
        except RhaiError as e:
            raise e.at(pos) from None

    return run


def stack_overflow(why: str) -> ErrorLimit:
    """The error of a script that nests deeper than the interpreter can follow."""
    return ErrorLimit("ErrorStackOverflow", "max_call_levels", f"Stack overflow: {why}")


class BreakEx(Exception):
    """``break [value]``."""

    def __init__(self, value: Any = None) -> None:
        self.value = value


class ContinueEx(Exception):
    """``continue``."""


class ReturnEx(Exception):
    """``return [value]``."""

    def __init__(self, value: Any = None) -> None:
        self.value = value


class NoMatch(Exception):
    """A native function does not take arguments of these types."""


class Ref:
    """The first argument of a native that may change it (strings and ints are immutable)."""

    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v


@dataclass(frozen=True)
class Native:
    """A Python function callable from Rhai.

    ``mut``: the first argument arrives as a `Ref` so the function can replace it.
    ``ctx``: the `Runtime` is passed first (for functions that call back into Rhai).
    """

    fn: Callable[..., Any]
    mut: bool = False
    ctx: bool = False


class DynScope:
    """Variables by name, for code that ``eval`` can extend or that ``f!()`` runs in."""

    __slots__ = ("names", "this", "vals")

    def __init__(self, names: list[str] | None = None, vals: list[Any] | None = None) -> None:
        self.names = names or []
        self.vals = vals or []
        self.this: Any = None

    def index(self, name: str) -> int:
        """Index of the innermost variable ``name``, or -1."""
        names = self.names
        for i in range(len(names) - 1, -1, -1):
            if names[i] == name:
                return i
        return -1

    def push(self, name: str, value: Any) -> None:
        """Add a variable."""
        self.names.append(name)
        self.vals.append(value)

    def truncate(self, n: int) -> None:
        """Drop the variables added after the first ``n``."""
        del self.names[n:]
        del self.vals[n:]


class CompiledFn:
    """A script function compiled to a Python closure over a frame (a list of slots)."""

    __slots__ = ("body", "captures", "fndef", "name", "nparams", "params", "size")

    def __init__(self, name: str, nparams: int) -> None:
        self.name = name
        self.nparams = nparams
        self.body: Ev = _unset
        self.size = 1
        self.params: list[tuple[int, bool]] = []  # (slot, lives in a cell)
        self.captures: list[int] = []  # slots of captured cells, closures only
        self.fndef: Any = None


def _unset(f: Any) -> Any:
    raise RhaiRuntimeError("function is not compiled yet")


class Closure:
    """A compiled anonymous function with the cells it captured."""

    __slots__ = ("cells", "cf")

    def __init__(self, cf: CompiledFn, cells: tuple[Cell, ...]) -> None:
        self.cf = cf
        self.cells = cells


class Runtime:
    """Counters, limits and tables for one script run; compiled code calls into it."""

    def __init__(self, engine: Any) -> None:
        limits = engine.limits
        self.engine = engine
        self.limits = limits
        self.ops = 0
        self.max_ops = limits.max_operations or (1 << 62)
        self.depth = 0
        self.max_depth = limits.max_call_levels or (1 << 30)
        self.natives: dict[tuple[str, int], Native] = engine.natives
        self.namespaces: Callable[[str, str], Native | None] = engine.namespace_lookup
        self.functions: dict[tuple[str, int], CompiledFn] = {}
        self.fn_defs: dict[tuple[str, int], Any] = {}
        self.globals: dict[str, Any] = {}  # top-level constants, for global::NAME
        self.compile_fn: Callable[[Any], CompiledFn] = _no_compiler
        self.stopped = False
        self.on_print: Callable[[str], None] = engine.on_print
        self.on_debug: Callable[[str, Pos], None] = engine.on_debug

    # -- limits ----------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the run to stop at its next counted operation (thread-safe enough)."""
        self.stopped = True
        self.max_ops = -1

    def tick(self) -> None:
        """Called when ``ops`` passed ``max_ops``: the limit, or a stop request."""
        if self.stopped:
            raise ErrorTerminated("Script terminated", None, "ErrorTerminated")
        raise ErrorLimit(
            "ErrorTooManyOperations",
            "max_operations",
            f"Too many operations: more than {self.limits.max_operations}",
        )

    def check_size(self, v: Any) -> Any:
        """Raise ErrorDataTooLarge when a string, array, map or blob is over its limit."""
        t = type(v)
        lim = self.limits
        if t is str:
            n, limit, what = len(v), lim.max_string_size, "max_string_size"
        elif t is list:
            n, limit, what = len(v), lim.max_array_size, "max_array_size"
        elif t is dict:
            n, limit, what = len(v), lim.max_map_size, "max_map_size"
        elif t is bytearray:
            n, limit, what = len(v), lim.max_array_size, "max_array_size"
        else:
            return v
        if limit and n > limit:
            raise ErrorLimit(
                "ErrorDataTooLarge", what, f"Length of {type_name(v)} is {n}, more than {limit}"
            )
        return v

    # -- functions -------------------------------------------------------------------------
    def script_fn(self, name: str, n: int) -> CompiledFn | None:
        """The compiled script function ``name`` with ``n`` parameters, if there is one."""
        cf = self.functions.get((name, n))
        if cf is None:
            fndef = self.fn_defs.get((name, n))
            if fndef is None:
                return None
            cf = self.compile_fn(fndef)
        return cf

    def has_fn(self, name: str, n: int | None = None) -> bool:
        """Whether a script function exists (any arity when ``n`` is None)."""
        if n is not None:
            return (name, n) in self.fn_defs
        return any(key[0] == name for key in self.fn_defs)

    def invoke(
        self, cf: CompiledFn, this: Any, args: list[Any], cells: tuple[Cell, ...] = ()
    ) -> tuple[Any, Any]:
        """Run a script function; returns (value, ``this`` after the call)."""
        self.ops += 1
        if self.ops > self.max_ops:
            self.tick()
        depth = self.depth + 1
        if depth > self.max_depth:
            raise ErrorLimit(
                "ErrorStackOverflow",
                "max_call_levels",
                f"Stack overflow: more than {self.limits.max_call_levels} calls "
                f"deep in '{cf.name or 'anonymous function'}'",
            )
        f: list[Any] = [None] * cf.size
        f[0] = this
        for (slot, cell), a in zip(cf.params, args, strict=False):
            if type(a) in MUTABLE:
                a = own(a)
            f[slot] = Cell(a) if cell else a
        for slot, c in zip(cf.captures, cells, strict=False):
            f[slot] = c
        self.depth = depth
        try:
            r = cf.body(f)
        except ReturnEx as e:
            r = e.value
        except RecursionError:
            raise stack_overflow("the Python stack is exhausted") from None
        finally:
            self.depth = depth - 1
        return r, f[0]

    def call_named(
        self, name: str, args: list[Any], this: Any, has_this: bool, pos: Pos | None
    ) -> tuple[Any, Any]:
        """Call a function by name: script functions first, then natives."""
        cf = self.script_fn(name, len(args))
        if cf is not None:
            return self.invoke(cf, this, args)
        if has_this:
            args = [this, *args]
        nat = self.natives.get((name, len(args))) or self.natives.get((name, -1))
        if nat is None:
            raise fn_not_found(name, args, pos)
        if nat.mut and args:
            ref = Ref(args[0])
            r = self.call_native(nat, name, [ref, *args[1:]], pos)
            return r, ref.v
        return self.call_native(nat, name, args, pos), this

    def call_native(self, nat: Native, name: str, args: list[Any], pos: Pos | None) -> Any:
        """Call a native; a type mismatch becomes ErrorFunctionNotFound."""
        try:
            if nat.ctx:
                return nat.fn(self, *args)
            return nat.fn(*args)
        except NoMatch:
            shown = [a.v if type(a) is Ref else a for a in args]
            raise fn_not_found(name, shown, pos) from None

    def call_fnptr(
        self,
        fp: Any,
        args: list[Any],
        this: Any = None,
        has_this: bool = False,
        pos: Pos | None = None,
    ) -> tuple[Any, Any]:
        """Call a function pointer with ``args`` after its curried ones."""
        if type(fp) is not FnPtr:
            raise runtime(
                "ErrorMismatchDataType", f"Expecting a function pointer, got {type_name(fp)}", pos
            )
        full = [*fp.curry, *args] if fp.curry else args
        if fp.fn is not None:
            clo: Closure = fp.fn
            return self.invoke(clo.cf, this, full, clo.cells)
        return self.call_named(fp.name, full, this, has_this, pos)

    def fnptr_arity(self, fp: FnPtr) -> int | None:
        """How many arguments a function pointer still takes, when known."""
        if fp.fn is not None:
            return int(fp.fn.cf.nparams) - len(fp.curry)
        for name, n in self.fn_defs:
            if name == fp.name:
                return n - len(fp.curry)
        return None

    def call_with(self, fp: Any, item: Any, extra: list[Any]) -> Any:
        """Call a callback with ``this`` = item and (item, *extra) as far as it takes them."""
        if type(fp) is str:
            fp = FnPtr(fp)
        arity = self.fnptr_arity(fp) if type(fp) is FnPtr else None
        args = [item, *extra]
        if arity is not None:
            args = args[: max(arity, 0)]
        elif len(args) > 1:
            args = args[:1]
        r, _ = self.call_fnptr(fp, args, item, False)
        return r


def fn_not_found(name: str, args: list[Any], pos: Pos | None) -> RhaiRuntimeError:
    """ErrorFunctionNotFound naming the argument types."""
    sig = ", ".join(type_name(a) for a in args)
    return runtime("ErrorFunctionNotFound", f"Function not found: {name} ({sig})", pos)


def _no_compiler(fndef: Any) -> CompiledFn:
    raise RhaiRuntimeError("no compiler")
