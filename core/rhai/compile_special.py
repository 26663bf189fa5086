"""Compile closures and the special forms: Fn, call, curry, eval, print, debug, type_of."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from core.rhai import ast as A
from core.rhai.errors import Pos, runtime
from core.rhai.runtime import Closure, Ev, at_pos
from core.rhai.values import Cell, FnPtr, to_debug, to_string, type_name

if TYPE_CHECKING:
    from core.rhai.compiler import Compiler

_anon = itertools.count(1)


def _args(c: Compiler, nodes: list[A.Node]) -> Ev:
    evs = [c.expr(n) for n in nodes]
    if not evs:
        return lambda f: []
    if len(evs) == 1:
        (a,) = evs
        return lambda f: [a(f)]
    if len(evs) == 2:
        a, b = evs
        return lambda f: [a(f), b(f)]
    return lambda f: [e(f) for e in evs]


def closure(c: Compiler, node: A.Closure) -> Ev:
    """``|x| body``: a function pointer holding the cells it captured."""
    from core.rhai.compiler import compile_function

    fndef = node.fn
    cf = compile_function(c.rt, fndef)
    cf.name = f"anon${next(_anon):04x}"
    outer = [o for o, _ in fndef.captures]
    if c.dynamic:
        names = [o.name for o in outer]

        def make_dyn(f: Any) -> Any:
            cells = []
            for name in names:
                i = f.index(name)
                v = f.vals[i] if i >= 0 else None
                if type(v) is not Cell:
                    v = Cell(v)
                    if i >= 0:
                        f.vals[i] = v
                v.shared = True
                cells.append(v)
            return FnPtr(cf.name, (), Closure(cf, tuple(cells)))

        return make_dyn
    slots = [o.slot for o in outer]

    def make(f: Any) -> Any:
        cells = tuple(f[s] for s in slots)
        for cell in cells:
            cell.shared = True
        return FnPtr(cf.name, (), Closure(cf, cells))

    return make


def _special(c: Compiler, node: A.Call) -> Ev | None:
    """``Fn``, ``call``, ``curry``, ``eval``, ``type_of``, ``print`` and friends."""
    rt, name, pos, n = c.rt, node.name, node.pos, len(node.args)
    args = _args(c, node.args)
    if name == "print" or name == "debug":
        if n > 1:
            return None
        show = to_string if name == "print" else to_debug
        out = rt.on_print if name == "print" else None

        def emit(f: Any) -> Any:
            text = show(args(f)[0]) if n else ""
            if out is not None:
                out(text)
            else:
                rt.on_debug(text, pos)
            return None

        return emit
    if name == "type_of" and n == 1:
        return lambda f: type_name(args(f)[0])
    if name == "Fn" and n == 1:

        def make_fn(f: Any) -> Any:
            fn_name = args(f)[0]
            if type(fn_name) is not str:
                raise runtime("ErrorMismatchDataType", "Fn expects a function name", pos)
            if not fn_name.isidentifier():
                raise runtime("ErrorFunctionNotFound", f"Invalid function name: {fn_name}", pos)
            return FnPtr(fn_name)

        return make_fn
    if name == "call" and n >= 1:

        def call_ptr(f: Any) -> Any:
            a = args(f)
            return rt.call_fnptr(a[0], a[1:], pos=pos)[0]

        return at_pos(call_ptr, pos)
    if name == "curry" and n >= 1:

        def curry(f: Any) -> Any:
            a = args(f)
            return _curry(a[0], a[1:], pos)

        return curry
    if name == "is_def_fn" and n == 2:

        def is_def_fn(f: Any) -> Any:
            a = args(f)
            return rt.has_fn(a[0], a[1])

        return is_def_fn
    if name == "is_def_var" and n == 1:
        if c.dynamic:
            return lambda f: f.index(args(f)[0]) >= 0
        visible = set(node.visible)
        return lambda f: args(f)[0] in visible
    if name == "is_shared" and n == 1:
        return _is_shared(c, node.args[0])
    if name == "eval" and n == 1:
        if not c.dynamic:
            return None
        top = c.is_main and c.nesting == 1

        def run_eval(f: Any) -> Any:
            code = args(f)[0]
            if type(code) is not str:
                raise runtime("ErrorMismatchDataType", "eval expects a string", pos)
            return rt.engine.eval_in(rt, code, f, top)

        return at_pos(run_eval, pos)
    return None


def _curry(fp: Any, extra: list[Any], pos: Pos) -> FnPtr:
    if type(fp) is not FnPtr:
        raise runtime(
            "ErrorMismatchDataType", f"Expecting a function pointer, got {type_name(fp)}", pos
        )
    return FnPtr(fp.name, (*fp.curry, *extra), fp.fn)


def _is_shared(c: Compiler, arg: A.Node) -> Ev:
    if isinstance(arg, A.Var) and arg.decl is not None and arg.decl.captured and not c.dynamic:
        slot = arg.decl.slot
        return lambda f: bool(f[slot].shared)
    if isinstance(arg, A.Var) and c.dynamic:
        name = arg.name

        def dyn(f: Any) -> Any:
            i = f.index(name)
            return i >= 0 and type(f.vals[i]) is Cell and bool(f.vals[i].shared)

        return dyn
    ev = c.expr(arg)

    def not_shared(f: Any) -> bool:
        ev(f)  # evaluated for its effects; a value (not a variable) is never shared
        return False

    return not_shared
