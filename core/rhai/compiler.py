"""Compile the syntax tree to nested Python closures over a frame (a list of variable slots).

Each expression becomes ``ev(f) -> value``. A frame is a list: slot 0 is ``this``,
then one slot per declared variable of the function. Functions that call ``eval``
(or run in a caller's scope via ``f!()``) use a `DynScope` of names instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.rhai import ast as A
from core.rhai.access import GETTERS, index_get, index_set, prop_set
from core.rhai.errors import Pos, RhaiError, runtime
from core.rhai.runtime import (
    CompiledFn,
    DynScope,
    Ev,
    Runtime,
    at_pos,
)
from core.rhai.values import MUTABLE, Cell, own, to_string, type_name

Setter = Callable[[Any, Any], None]
_FRESH = (A.Lit, A.ArrayLit, A.MapLit, A.Interp, A.Unary, A.Closure, A.Binary)


def _needs_own(node: A.Node) -> bool:
    """Whether a value may be shared with a variable and must be copied when stored."""
    return not isinstance(node, _FRESH) or (isinstance(node, A.Binary) and node.op == "??")


class ShortCircuit(Exception):
    """``a?.b`` met (): the rest of the chain is skipped and the chain's value is ()."""


SHORT = ShortCircuit()


def _has_safe(node: A.Node) -> bool:
    while isinstance(node, A.Prop | A.Index | A.MethodCall):
        if node.safe:
            return True
        node = node.target
    return False


def _const(v: Any) -> Ev:
    return lambda f: v


def not_bool(v: Any, pos: Pos) -> RhaiError:
    """ErrorMismatchDataType for a condition that is not a bool."""
    return runtime("ErrorMismatchDataType", f"Boolean expression expected, got {type_name(v)}", pos)


class Compiler:
    """Compiles the body of one function (``dynamic``: variables by name)."""

    def __init__(self, rt: Runtime, fndef: A.FnDef, dynamic: bool, is_main: bool = False):
        self.rt = rt
        self.fndef = fndef
        self.dynamic = dynamic
        self.is_main = is_main
        self.chain = 0  # > 0 while compiling the target of a property, index or method
        self.nesting = 0  # blocks around the statement being compiled (1: the body itself)
        from core.rhai import compile_calls, compile_flow, compile_ops

        self.calls = compile_calls
        self.flow = compile_flow
        self.ops = compile_ops

    # -- dispatch --------------------------------------------------------------------------
    def expr(self, node: A.Node) -> Ev:
        """Compile any node."""
        name = "c_" + type(node).__name__
        method = getattr(self, name, None)
        if method is None:
            method = getattr(self.flow, name, None) or getattr(self.ops, name)
            ev: Ev = method(self, node)
        else:
            ev = method(node)
        return ev

    def value(self, node: A.Node) -> Ev:
        """Compile a node whose value gets stored: shared containers are copied."""
        ev = self.expr(node)
        if not _needs_own(node):
            return ev

        def run(f: Any) -> Any:
            v = ev(f)
            return own(v) if type(v) in MUTABLE else v

        return run

    def c_Lit(self, node: A.Lit) -> Ev:
        return _const(node.value)

    def c_Interp(self, node: A.Interp) -> Ev:
        parts = [self.expr(p) for p in node.parts]
        check = self.rt.check_size

        def run(f: Any) -> Any:
            return check("".join([to_string(p(f)) for p in parts]))

        return at_pos(run, node.pos)

    def c_ArrayLit(self, node: A.ArrayLit) -> Ev:
        items = [self.value(i) for i in node.items]
        return lambda f: [i(f) for i in items]

    def c_MapLit(self, node: A.MapLit) -> Ev:
        items = [(k, self.value(v)) for k, v in node.items]
        return lambda f: {k: v(f) for k, v in items}

    def c_This(self, node: A.This) -> Ev:
        if self.dynamic:
            return lambda f: f.this
        return lambda f: f[0]

    def c_Block(self, node: A.Block) -> Ev:
        return self.block(node.stmts)

    def c_Closure(self, node: A.Closure) -> Ev:
        from core.rhai.compile_special import closure

        return closure(self, node)

    def c_Call(self, node: A.Call) -> Ev:
        return self.calls.call(self, node)

    def c_MethodCall(self, node: A.MethodCall) -> Ev:
        return self.calls.method_call(self, node)

    # -- blocks ----------------------------------------------------------------------------
    def block(self, stmts: list[A.Node], tail: bool = False, scoped: bool = True) -> Ev:
        """A statement list; its value is the last statement's value."""
        self.nesting += 1
        try:
            evs = [self.stmt(s, tail and i == len(stmts) - 1) for i, s in enumerate(stmts)]
        finally:
            self.nesting -= 1
        ev: Ev
        if not evs:
            ev = _const(None)
        elif len(evs) == 1:
            ev = evs[0]
        elif len(evs) == 2:
            a, b = evs

            def ev(f: Any) -> Any:
                a(f)
                return b(f)
        elif len(evs) == 3:
            a, b, c = evs

            def ev(f: Any) -> Any:
                a(f)
                b(f)
                return c(f)
        else:
            head, last = evs[:-1], evs[-1]

            def ev(f: Any) -> Any:
                for s in head:
                    s(f)
                return last(f)

        if self.dynamic and scoped:
            inner = ev

            def ev(f: Any) -> Any:
                n = len(f.names)
                try:
                    return inner(f)
                finally:
                    f.truncate(n)

        return ev

    def stmt(self, node: A.Node, tail: bool) -> Ev:
        """A statement; in tail position ``return x`` is just ``x``."""
        if tail and isinstance(node, A.Jump) and node.kind == "return":
            return self.expr(node.value) if node.value is not None else _const(None)
        if tail and isinstance(node, A.If):
            return self.flow.c_If(self, node, tail=True)
        if tail and isinstance(node, A.Block):
            return self.block(node.stmts, tail=True)
        return self.expr(node)

    # -- variables -------------------------------------------------------------------------
    def var_get(self, node: A.Var) -> Ev:
        """Read a variable."""
        rt, name, pos = self.rt, node.name, node.pos
        if node.ns == "global":

            def glob(f: Any) -> Any:
                if name in rt.globals:
                    return rt.globals[name]
                raise runtime("ErrorVariableNotFound", f"Variable not found: global::{name}", pos)

            return glob
        if node.ns:
            raise runtime("ErrorVariableNotFound", f"Variable not found: {node.ns}::{name}", pos)
        decl = node.decl
        if self.dynamic or decl is None:
            dyn = self.dynamic

            def by_name(f: Any) -> Any:
                if dyn:
                    i = f.index(name)
                    if i >= 0:
                        v = f.vals[i]
                        return v.v if type(v) is Cell else v
                if rt.has_fn(name):
                    from core.rhai.values import FnPtr

                    return FnPtr(name)
                raise runtime("ErrorVariableNotFound", f"Variable not found: {name}", pos)

            return by_name
        i = decl.slot
        if decl.captured:
            return lambda f: f[i].v
        return lambda f: f[i]

    def var_set(self, node: A.Var) -> Setter:
        """Write a variable."""
        name, pos = node.name, node.pos
        decl = node.decl
        if self.dynamic or decl is None:
            dyn = self.dynamic

            def by_name(f: Any, v: Any) -> None:
                i = f.index(name) if dyn else -1
                if i < 0:
                    raise runtime("ErrorVariableNotFound", f"Variable not found: {name}", pos)
                old = f.vals[i]
                if type(old) is Cell:
                    old.v = v
                else:
                    f.vals[i] = v

            return by_name
        i = decl.slot
        if decl.captured:

            def set_cell(f: Any, v: Any) -> None:
                f[i].v = v

            return set_cell

        def set_slot(f: Any, v: Any) -> None:
            f[i] = v

        return set_slot

    def declare(self, decl: A.Decl) -> Setter:
        """Bind a new variable (``let``, a loop or catch variable)."""
        if self.dynamic:
            name = decl.name

            def push(f: DynScope, v: Any) -> None:
                f.push(name, v)

            return push
        i = decl.slot
        if decl.captured:

            def new_cell(f: Any, v: Any) -> None:
                f[i] = Cell(v)

            return new_cell

        def bind(f: Any, v: Any) -> None:
            f[i] = v

        return bind

    # -- places ----------------------------------------------------------------------------
    def place(self, node: A.Node) -> tuple[Ev, Setter | None]:
        """A getter and (for variables and their parts) a setter of a place."""
        if isinstance(node, A.Var) and not node.ns:
            return self.var_get(node), self.var_set(node)
        if isinstance(node, A.This):
            if self.dynamic:

                def set_this_dyn(f: Any, v: Any) -> None:
                    f.this = v

                return self.c_This(node), set_this_dyn

            def set_this(f: Any, v: Any) -> None:
                f[0] = v

            return self.c_This(node), set_this
        if isinstance(node, A.Index):
            return self.index_place(node)
        if isinstance(node, A.Prop):
            return self.prop_place(node)
        return self.expr(node), None

    def chain_target(self, node: A.Node) -> tuple[Ev, Setter | None]:
        """The place of a postfix expression's target."""
        self.chain += 1
        try:
            return self.place(node)
        finally:
            self.chain -= 1

    def chain_root(self, node: A.Node, ev: Ev) -> Ev:
        """The outermost node of a chain with ``?.`` turns a short circuit into ()."""
        if self.chain or not _has_safe(node):
            return ev

        def run(f: Any) -> Any:
            try:
                return ev(f)
            except ShortCircuit:
                return None

        return run

    def index_place(self, node: A.Index) -> tuple[Ev, Setter | None]:
        tget, tset = self.chain_target(node.target)
        iget = self.expr(node.index)
        pos, safe = node.pos, node.safe

        def get(f: Any) -> Any:
            c = tget(f)
            i = iget(f)
            if type(c) is list and type(i) is int and 0 <= i < len(c):
                return c[i]
            if safe and c is None:
                raise SHORT
            try:
                return index_get(c, i)
            except RhaiError as e:
                raise e.at(pos) from None

        def set_(f: Any, v: Any) -> None:
            c = tget(f)
            i = iget(f)
            if type(c) is list and type(i) is int and 0 <= i < len(c):
                c[i] = own(v) if type(v) in MUTABLE else v
                return
            if safe and c is None:
                return
            try:
                r = index_set(c, i, v)
            except RhaiError as e:
                raise e.at(pos) from None
            if r is not c and tset is not None:
                tset(f, r)

        return get, set_

    def prop_place(self, node: A.Prop) -> tuple[Ev, Setter | None]:
        tget, _ = self.chain_target(node.target)
        name, pos, safe, rt = node.name, node.pos, node.safe, self.rt
        getter = rt.natives.get((name, 1)) if name in GETTERS else None

        def get(f: Any) -> Any:
            c = tget(f)
            if type(c) is dict:
                return c.get(name)
            if safe and c is None:
                raise SHORT
            if getter is not None:
                try:
                    return rt.call_native(getter, name, [c], pos)
                except RhaiError as e:
                    raise e.at(pos) from None
            raise runtime("ErrorDotExpr", f"Unknown property '{name}' for {type_name(c)}", pos)

        def set_(f: Any, v: Any) -> None:
            c = tget(f)
            try:
                prop_set(c, name, v)
            except RhaiError as e:
                raise e.at(pos) from None

        return get, set_

    def c_Var(self, node: A.Var) -> Ev:
        return self.var_get(node)

    def c_Index(self, node: A.Index) -> Ev:
        return self.chain_root(node, self.index_place(node)[0])

    def c_Prop(self, node: A.Prop) -> Ev:
        return self.chain_root(node, self.prop_place(node)[0])


def compile_function(
    rt: Runtime, fndef: A.FnDef, dynamic: bool = False, is_main: bool = False
) -> CompiledFn:
    """Compile a function (or the script's main body) for ``rt``."""
    cf = CompiledFn(fndef.name, len(fndef.params))
    cf.fndef = fndef
    dynamic = dynamic or fndef.has_eval
    if fndef.name and not dynamic:
        rt.functions[(fndef.name, len(fndef.params))] = cf  # before the body: recursion
    limit = rt.limits.max_variables
    if limit and len(fndef.decls) > limit:
        from core.rhai.errors import ErrorLimit

        raise ErrorLimit(
            "ErrorTooManyVariables",
            "max_variables",
            f"Too many variables: {len(fndef.decls)} in "
            f"'{fndef.name or 'script'}', more than {limit}",
            fndef.pos,
        )
    for i, d in enumerate(fndef.decls):
        d.slot = i + 1
    cf.size = len(fndef.decls) + 1
    cf.params = [(p.slot, p.captured) for p in fndef.params]
    cf.captures = [inner.slot for _, inner in fndef.captures]
    comp = Compiler(rt, fndef, dynamic, is_main)
    body = comp.block(fndef.body.stmts, tail=True)
    if dynamic:
        body = _dynamic_entry(fndef, body)
    cf.body = body
    return cf


def _dynamic_entry(fndef: A.FnDef, body: Ev) -> Ev:
    """Run a by-name body from a slot frame: parameters and captures become named."""
    params = [(p.name, p.slot) for p in fndef.params]
    caps = [(inner.name, inner.slot) for _, inner in fndef.captures]

    def run(f: Any) -> Any:
        if type(f) is DynScope:
            return body(f)
        scope = DynScope()
        scope.this = f[0]
        for name, slot in params + caps:
            scope.push(name, f[slot])
        try:
            return body(scope)
        finally:
            f[0] = scope.this

    return run
