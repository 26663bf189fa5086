"""Compile function calls, method calls, closures and the built-in special forms."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.rhai import ast as A
from core.rhai.compile_special import _args, _curry, _is_shared, _special
from core.rhai.compiler import SHORT
from core.rhai.errors import Pos, RhaiError, runtime
from core.rhai.runtime import DynScope, Ev, Ref, Runtime, at_pos, fn_not_found
from core.rhai.values import FnPtr, type_name

if TYPE_CHECKING:
    from core.rhai.compiler import Compiler


def call(c: Compiler, node: A.Call) -> Ev:
    """``f(args)``: a script function, a native, or ``ns::f`` from a namespace."""
    rt, name, pos, n = c.rt, node.name, node.pos, len(node.args)
    if node.ns:
        return _namespaced(c, node)
    if node.bang:
        return _bang_call(c, node)
    special = _special(c, node)
    if special is not None:
        return special
    args = _args(c, node.args)
    if (name, n) in rt.fn_defs:
        fast = _fast_script_call(c, node)
        if fast is not None:
            return fast
        key = (name, n)

        def script(f: Any) -> Any:
            cf = rt.functions.get(key) or rt.script_fn(name, n)
            assert cf is not None
            try:
                return rt.invoke(cf, None, args(f))[0]
            except RhaiError as e:
                raise e.at(pos) from None

        return script
    nat = rt.natives.get((name, n)) or rt.natives.get((name, -1))
    if nat is None:

        def missing(f: Any) -> Any:
            a = args(f)
            cf = rt.script_fn(name, n)  # defined later by eval
            if cf is not None:
                return rt.invoke(cf, None, a)[0]
            raise fn_not_found(name, a, pos)

        return missing
    fn, call_native = nat.fn, rt.call_native
    if nat.mut and n:
        tget, tset = c.place(node.args[0])
        rest = _args(c, node.args[1:])

        constant = _is_constant(node.args[0])

        def mut_native(f: Any) -> Any:
            obj = tget(f)
            if constant:
                return _on_constant(rt, nat, name, obj, rest(f), pos)
            ref = Ref(obj)
            r = call_native(nat, name, [ref, *rest(f)], pos)
            if ref.v is not obj and tset is not None:
                tset(f, ref.v)
            return r

        return at_pos(mut_native, pos)
    if nat.ctx:
        return at_pos(lambda f: call_native(nat, name, args(f), pos), pos)
    from core.rhai.runtime import NoMatch

    def native(f: Any) -> Any:
        a = args(f)
        try:
            return fn(*a)
        except NoMatch:
            raise fn_not_found(name, a, pos) from None
        except RhaiError as e:
            raise e.at(pos) from None

    return native


def _fast_script_call(c: Compiler, node: A.Call) -> Ev | None:
    """A call of a plain script function: the frame is built here, without `Runtime.invoke`."""
    rt, name, pos, n = c.rt, node.name, node.pos, len(node.args)
    fndef = rt.fn_defs[(name, n)]
    if fndef.has_eval or any(p.captured for p in fndef.params) or n > 3:
        return None
    from core.rhai.errors import ErrorLimit
    from core.rhai.runtime import ReturnEx

    size = len(fndef.decls) + 1
    evs = [c.value(a) for a in node.args]
    holder: list[Any] = []

    def fetch() -> Any:
        cf = rt.script_fn(name, n)
        assert cf is not None
        holder.append(cf.body)
        return cf.body

    def overflow() -> ErrorLimit:
        return ErrorLimit(
            "ErrorStackOverflow",
            "max_call_levels",
            f"Stack overflow: more than {rt.limits.max_call_levels} calls deep in '{name}'",
            pos,
        )

    make = _CALLS.get(n)
    if make is None:
        assign = "\n        ".join(f"fr[{i + 1}] = a{i}(f)" for i in range(n)) or "pass"
        scope: dict[str, Any] = {}
        exec(_CALL_TEMPLATE.format(assign=assign), scope)
        make = _CALLS[n] = scope["make"]
    a0, a1, a2 = [*evs, None, None, None][:3]
    ev: Ev = make(rt, size, holder, fetch, overflow, pos, a0, a1, a2, ReturnEx, RhaiError)
    return ev


_CALLS: dict[int, Any] = {}
_CALL_TEMPLATE = """
def make(rt, size, holder, fetch, overflow, pos, a0, a1, a2, ReturnEx, RhaiError):
    def call(f):
        fr = [None] * size
        {assign}
        rt.ops += 1
        if rt.ops > rt.max_ops:
            rt.tick()
        d = rt.depth + 1
        if d > rt.max_depth:
            raise overflow()
        body = holder[0] if holder else fetch()
        rt.depth = d
        try:
            return body(fr)
        except ReturnEx as e:
            return e.value
        except RhaiError as e:
            raise e.at(pos) from None
        except RecursionError:
            raise overflow() from None
        finally:
            rt.depth = d - 1
    return call
"""


def _namespaced(c: Compiler, node: A.Call) -> Ev:
    rt, pos = c.rt, node.pos
    args = _args(c, node.args)
    ns, name = node.ns, node.name
    if ns == "global":
        inner = A.Call(node.pos, name, node.args)
        return call(c, inner)

    def run(f: Any) -> Any:
        nat = rt.namespaces(ns, name)
        if nat is None:
            raise runtime("ErrorFunctionNotFound", f"Function not found: {ns}::{name}", pos)
        return rt.call_native(nat, f"{ns}::{name}", args(f), pos)

    return at_pos(run, pos)


def _bang_call(c: Compiler, node: A.Call) -> Ev:
    """``f!(args)``: run a script function in the caller's scope; its lets are dropped."""
    rt, name, pos = c.rt, node.name, node.pos
    args = _args(c, node.args)
    n = len(node.args)
    dyn_fns: dict[tuple[str, int], Any] = {}

    def body(f: Any) -> Any:
        key = (name, n)
        fndef = rt.fn_defs.get(key)
        if fndef is None:
            raise fn_not_found(name, args(f), pos)
        cf = dyn_fns.get(key)
        if cf is None:
            from core.rhai.compiler import compile_function

            cf = dyn_fns[key] = compile_function(rt, fndef, dynamic=True)
        return cf

    if c.dynamic:

        def run_dyn(f: Any) -> Any:
            cf = body(f)
            a = args(f)
            n0 = len(f.names)
            try:
                for p, v in zip(cf.fndef.params, a, strict=False):
                    f.push(p.name, v)
                return _run_in(rt, cf, f)
            finally:
                f.truncate(n0)

        return at_pos(run_dyn, pos)
    visible = [(nm, d.slot, d.captured) for nm, d in node.visible.items()]

    def run(f: Any) -> Any:
        cf = body(f)
        a = args(f)
        scope = DynScope([nm for nm, _, _ in visible], [f[s] for _, s, _ in visible])
        scope.this = f[0]
        for p, v in zip(cf.fndef.params, a, strict=False):
            scope.push(p.name, v)
        try:
            return _run_in(rt, cf, scope)
        finally:
            for i, (_, slot, captured) in enumerate(visible):
                if not captured:
                    f[slot] = scope.vals[i]

    return at_pos(run, pos)


def _run_in(rt: Runtime, cf: Any, scope: DynScope) -> Any:
    from core.rhai.runtime import ReturnEx

    rt.depth += 1
    try:
        if rt.depth > rt.max_depth:
            from core.rhai.errors import ErrorLimit

            raise ErrorLimit("ErrorStackOverflow", "max_call_levels", "Stack overflow")
        return cf.body(scope)
    except ReturnEx as e:
        return e.value
    finally:
        rt.depth -= 1


_TYPE_ALIASES = {
    "i64": ("int", "i64", "INT"), "f64": ("float", "f64", "FLOAT"),
    "string": ("string", "String", "str"), "array": ("array", "Array"), "map": ("map", "Map"),
    "blob": ("blob", "Blob"), "char": ("char",), "bool": ("bool",), "()": ("()", "unit"),
    "Fn": ("Fn", "FnPtr"), "timestamp": ("timestamp", "Instant"),
}  # fmt: skip


def method_call(c: Compiler, node: A.MethodCall) -> Ev:
    """``obj.f(args)``: ``this`` is ``obj``, written back when the call changed it."""
    rt, name, pos, n = c.rt, node.name, node.pos, len(node.args)
    tget, tset = c.chain_target(node.target)
    args = _args(c, node.args)
    safe = node.safe
    if name == "is_shared" and n == 0:
        return _is_shared(c, node.target)
    if name == "type_of" and n == 0:
        tget0 = tget
        return c.chain_root(
            node, lambda f: type_name(tget0(f)) if not (safe and tget0(f) is None) else None
        )
    script_key = (name, n) if (name, n) in rt.fn_defs else None
    typed = {k[0].partition(".")[0] for k in rt.fn_defs if k[0].endswith("." + name) and k[1] == n}
    nat = rt.natives.get((name, n + 1)) or rt.natives.get((name, -1))
    general = _method_run(c, node, tget, tset, args, script_key, typed, nat)
    # Reading the target twice must have no side effect, and constants take the slow path.
    simple = isinstance(node.target, A.Var | A.This) and not _is_constant(node.target)
    fast = name in ("push", "len") and n == (name == "push") and simple
    if fast and not script_key and not typed:
        return c.chain_root(node, _list_fast_path(c, node, tget, general))
    return c.chain_root(node, at_pos(general, pos))


def _is_constant(node: A.Node) -> bool:
    """A ``const`` variable (or a part of one)."""
    while isinstance(node, A.Index | A.Prop):
        node = node.target
    return isinstance(node, A.Var) and node.decl is not None and node.decl.const


def _on_constant(rt: Runtime, nat: Any, name: str, obj: Any, args: list[Any], pos: Pos) -> Any:
    """Call a native that may change its first argument on a copy of a constant.

    Raises ErrorNonPureMethodCallOnConstant when the call did change it.
    """
    from core.rhai.values import own, values_equal

    ref = Ref(own(obj))
    r = rt.call_native(nat, name, [ref, *args], pos)
    if not values_equal(ref.v, obj):
        raise runtime(
            "ErrorNonPureMethodCallOnConstant",
            f"Non-pure method '{name}' cannot be called on a constant",
            pos,
        )
    return r


def _list_fast_path(c: Compiler, node: A.MethodCall, tget: Ev, general: Ev) -> Ev:
    """``list.push(x)`` and ``x.len()`` without the general method machinery."""
    from core.rhai.values import MUTABLE, own

    pos = node.pos
    limit = c.rt.limits.max_array_size
    if node.name == "len":

        def length(f: Any) -> Any:
            obj = tget(f)
            if type(obj) is list or type(obj) is str:
                return len(obj)
            try:
                return general(f)
            except RhaiError as e:
                raise e.at(pos) from None

        return length
    item = c.expr(node.args[0])

    def push(f: Any) -> Any:
        obj = tget(f)
        if type(obj) is list and (not limit or len(obj) < limit):
            v = item(f)
            obj.append(own(v) if type(v) in MUTABLE else v)
            return None
        try:
            return general(f)
        except RhaiError as e:
            raise e.at(pos) from None

    return push


def _method_run(
    c: Compiler,
    node: A.MethodCall,
    tget: Ev,
    tset: Any,
    args: Ev,
    script_key: tuple[str, int] | None,
    typed: set[str],
    nat: Any,
) -> Ev:
    """The general method call."""
    rt, name, pos, n, safe = c.rt, node.name, node.pos, len(node.args), node.safe
    constant = _is_constant(node.target)

    def run(f: Any) -> Any:
        obj = tget(f)
        if safe and obj is None:
            raise SHORT
        a = args(f)
        if name == "call" or name == "curry":
            if type(obj) is FnPtr:
                if name == "curry":
                    return _curry(obj, a, pos)
                return rt.call_fnptr(obj, a, pos=pos)[0]
            if name == "call" and a:
                r, new_this = rt.call_fnptr(a[0], a[1:], obj, True, pos)
                if new_this is not obj and tset is not None:
                    tset(f, new_this)
                return r
        if typed:
            tname = type_name(obj)
            for alias in _TYPE_ALIASES.get(tname, (tname,)):
                if alias in typed:
                    cf = rt.script_fn(f"{alias}.{name}", n)
                    assert cf is not None
                    r, new_this = rt.invoke(cf, obj, a)
                    if new_this is not obj and tset is not None:
                        tset(f, new_this)
                    return r
        if script_key is not None:
            cf = rt.script_fn(name, n)
            assert cf is not None
            r, new_this = rt.invoke(cf, obj, a)
        elif nat is not None:
            if nat.mut:
                if constant:
                    return _on_constant(rt, nat, name, obj, a, pos)
                ref = Ref(obj)
                r = rt.call_native(nat, name, [ref, *a], pos)
                new_this = ref.v
            else:
                return rt.call_native(nat, name, [obj, *a], pos)
        elif type(obj) is dict and type(obj.get(name)) is FnPtr:
            r, new_this = rt.call_fnptr(obj[name], a, obj, True, pos)
        else:
            cf = rt.script_fn(name, n)
            if cf is None:
                raise fn_not_found(name, [obj, *a], pos)
            r, new_this = rt.invoke(cf, obj, a)
        if new_this is not obj and tset is not None:
            tset(f, new_this)
        return r

    return run
