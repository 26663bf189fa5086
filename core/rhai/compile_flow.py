"""Compile control flow: let, if, switch, while/loop/do, for, try/catch and jumps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.rhai import ast as A
from core.rhai.errors import ErrorThrown, Pos, RhaiError, RhaiRuntimeError, runtime
from core.rhai.runtime import BreakEx, ContinueEx, Ev, ReturnEx
from core.rhai.values import MUTABLE, Cell, Char, Range, own, to_string

if TYPE_CHECKING:
    from core.rhai.compiler import Compiler

_CONTINUE = ContinueEx()


def _not_bool(v: Any, pos: Pos) -> RhaiError:
    from core.rhai.compiler import not_bool

    return not_bool(v, pos)


def c_Let(c: Compiler, node: A.Let) -> Ev:
    bind = c.declare(node.decl)
    value = c.value(node.expr) if node.expr is not None else (lambda f: None)
    if node.decl.const and c.is_main and c.nesting == 1:
        globals_, name = c.rt.globals, node.decl.name

        def let_global(f: Any) -> None:
            v = value(f)
            globals_[name] = v
            bind(f, v)

        return let_global

    def let(f: Any) -> None:
        bind(f, value(f))

    return let


def c_If(c: Compiler, node: A.If, tail: bool = False) -> Ev:
    cond = c.expr(node.cond)
    then = c.block(node.then.stmts, tail) if isinstance(node.then, A.Block) else c.expr(node.then)
    orelse: Ev
    if node.orelse is None:
        orelse = lambda f: None  # noqa: E731
    elif isinstance(node.orelse, A.Block):
        orelse = c.block(node.orelse.stmts, tail)
    else:
        orelse = (
            c_If(c, node.orelse, tail) if isinstance(node.orelse, A.If) else c.expr(node.orelse)
        )
    pos = node.cond.pos

    def run(f: Any) -> Any:
        v = cond(f)
        if v is True:
            return then(f)
        if v is False:
            return orelse(f)
        raise _not_bool(v, pos)

    return run


_BREAK = object()  # a loop body's value when a guard ``if c { break; }`` fired


def _guard(stmt: A.Node) -> tuple[int, A.Node] | None:
    """``if c { continue; }`` (1) or ``if c { break; }`` (2): no exception needed."""
    if not isinstance(stmt, A.If) or stmt.orelse is not None:
        return None
    then = stmt.then
    if not isinstance(then, A.Block) or len(then.stmts) != 1:
        return None
    jump = then.stmts[0]
    if isinstance(jump, A.Jump) and jump.value is None and jump.kind in ("continue", "break"):
        return (1 if jump.kind == "continue" else 2), stmt.cond
    return None


def loop_body(c: Compiler, stmts: list[A.Node]) -> Ev:
    """A loop body; guards at its top level return early instead of raising."""
    guards = [_guard(s) for s in stmts]
    if c.dynamic or not any(guards):
        return c.block(stmts)
    items: list[tuple[int, Ev, Pos]] = []
    for stmt, guard in zip(stmts, guards, strict=True):
        if guard is None:
            items.append((0, c.expr(stmt), stmt.pos))
        else:
            items.append((guard[0], c.expr(guard[1]), guard[1].pos))

    def run(f: Any) -> Any:
        for kind, ev, pos in items:
            if not kind:
                ev(f)
                continue
            v = ev(f)
            if v is True:
                return None if kind == 1 else _BREAK
            if v is not False:
                raise _not_bool(v, pos)
        return None

    return run


def c_Loop(c: Compiler, node: A.Loop) -> Ev:
    rt = c.rt
    body = loop_body(c, node.body.stmts)
    cond = c.expr(node.cond) if node.cond is not None else None
    until, post = node.until, node.post
    pos = node.cond.pos if node.cond is not None else node.pos

    def run(f: Any) -> Any:
        while True:
            rt.ops += 1
            if rt.ops > rt.max_ops:
                _tick(rt, pos)
            if cond is not None and not post:
                v = cond(f)
                if type(v) is not bool:
                    raise _not_bool(v, pos)
                if v is until:
                    return None
            try:
                if body(f) is _BREAK:
                    return None
            except ContinueEx:
                pass
            except BreakEx as e:
                return e.value
            if cond is not None and post:
                v = cond(f)
                if type(v) is not bool:
                    raise _not_bool(v, pos)
                if v is until:
                    return None

    return run


def _tick(rt: Any, pos: Pos) -> None:
    try:
        rt.tick()
    except RhaiError as e:
        raise e.at(pos) from None


def iterate(v: Any) -> Any:
    """What ``for`` walks over: ranges, arrays, strings, blobs and iterators."""
    t = type(v)
    if t is Range:
        return v.py_range()
    if t is list:
        return list(v)
    if t is str or t is Char:
        return [Char(ch) for ch in v]
    if t is bytearray:
        return list(v)
    if t is RIter:
        return v.it
    raise runtime("ErrorFor", f"For loop expects an iterable type, not {type(v).__name__}")


class RIter:
    """An iterator from ``range()``, ``chars()``, ``bits()`` and the like."""

    __slots__ = ("it",)
    rhai_type_name = "iterator"

    def __init__(self, it: Any) -> None:
        self.it = it


def c_For(c: Compiler, node: A.For) -> Ev:
    rt = c.rt
    source = c.expr(node.iterable)
    body = loop_body(c, node.body.stmts)
    bind = c.declare(node.var)
    count = c.declare(node.counter) if node.counter is not None else None
    pos = node.iterable.pos
    fast_slot = -1 if c.dynamic or node.var.captured or count is not None else node.var.slot
    # A captured loop variable is one shared cell for the whole loop (as in Rhai): closures
    # made in the body see its last value.
    cells = [d.slot for d in (node.var, node.counter) if d is not None and d.captured]
    if c.dynamic:
        cells = []
    var_cell = node.var.captured and not c.dynamic
    count_cell = node.counter is not None and node.counter.captured and not c.dynamic
    vslot = node.var.slot
    cslot = node.counter.slot if node.counter is not None else -1

    def run(f: Any) -> Any:
        try:
            seq = iterate(source(f))
        except RhaiError as err:
            raise err.at(pos) from None
        n0 = len(f.names) if c.dynamic else 0
        for slot in cells:
            f[slot] = Cell(None)
        for i, x in enumerate(seq):
            rt.ops += 1
            if rt.ops > rt.max_ops:
                _tick(rt, pos)
            if type(x) in MUTABLE:
                x = own(x)
            if fast_slot > 0:
                f[fast_slot] = x
            elif cells:
                if var_cell:
                    f[vslot].v = x
                else:
                    f[vslot] = x
                if count_cell:
                    f[cslot].v = i
                elif cslot > 0:
                    f[cslot] = i
            else:
                if c.dynamic:
                    f.truncate(n0)
                bind(f, x)
                if count is not None:
                    count(f, i)
            try:
                if body(f) is _BREAK:
                    break
            except ContinueEx:
                pass
            except BreakEx as e:
                return e.value
        if c.dynamic:
            f.truncate(n0)
        return None

    return run


def c_Switch(c: Compiler, node: A.Switch) -> Ev:
    value = c.expr(node.expr)
    table: dict[Any, list[tuple[Ev | None, Ev]]] = {}
    ranges: list[tuple[range, Ev | None, Ev]] = []
    for case in node.cases:
        cond = c.expr(case.cond) if case.cond is not None else None
        body = c.expr(case.body)
        if case.range is not None:
            lo, hi, incl = case.range
            ranges.append((range(lo, hi + 1 if incl else hi), cond, body))
        for v in case.values:
            table.setdefault(_key(v), []).append((cond, body))
    default = c.expr(node.default) if node.default is not None else (lambda f: None)
    pos = node.pos

    def pick(f: Any, arms: list[tuple[Ev | None, Ev]]) -> Any:
        for cond, body in arms:
            if cond is None:
                return True, body(f)
            ok = cond(f)
            if type(ok) is not bool:
                raise _not_bool(ok, pos)
            if ok:
                return True, body(f)
        return False, None

    def run(f: Any) -> Any:
        v = value(f)
        try:
            arms = table.get(_key(v))
        except TypeError:
            arms = None
        if arms:
            hit, r = pick(f, arms)
            if hit:
                return r
        if ranges and type(v) is Range:
            for rng, cond, body in ranges:
                if rng == v.py_range():
                    hit, r = pick(f, [(cond, body)])
                    if hit:
                        return r
        if ranges and type(v) is int:
            for rng, cond, body in ranges:
                if v in rng:
                    hit, r = pick(f, [(cond, body)])
                    if hit:
                        return r
        return default(f)

    return run


def _key(v: Any) -> Any:
    t = type(v)
    if t is Char:
        t = str
    return (t, v)


def c_Try(c: Compiler, node: A.Try) -> Ev:
    body = c.block(node.body.stmts)
    catch = c.block(node.catch.stmts)
    bind = c.declare(node.var) if node.var is not None else None

    def run(f: Any) -> Any:
        n0 = len(f.names) if c.dynamic else 0
        try:
            return body(f)
        except RhaiRuntimeError as e:
            if not e.catchable:
                raise
            if c.dynamic:
                f.truncate(n0)
            if bind is not None:
                bind(f, error_value(e))
            try:
                return catch(f)
            finally:
                if c.dynamic:
                    f.truncate(n0)

    return run


def error_value(e: RhaiRuntimeError) -> Any:
    """What ``catch (err)`` sees: the thrown value, or a map describing the error."""
    if isinstance(e, ErrorThrown):
        return e.value
    info: dict[str, Any] = {"message": e.message, "error": e.kind}
    if e.line:
        info["line"] = e.line
        info["position"] = e.col
    return info


def c_Jump(c: Compiler, node: A.Jump) -> Ev:
    value = c.value(node.value) if node.value is not None else (lambda f: None)
    kind, pos = node.kind, node.pos
    if kind == "continue":

        def cont(f: Any) -> Any:
            raise _CONTINUE

        return cont
    if kind == "break":

        def brk(f: Any) -> Any:
            raise BreakEx(value(f))

        return brk
    if kind == "return":

        def ret(f: Any) -> Any:
            raise ReturnEx(value(f))

        return ret

    def throw(f: Any) -> Any:
        v = value(f)
        raise ErrorThrown(v, to_string(v), pos)

    return throw


__all__ = [
    "RIter",
    "c_For",
    "c_If",
    "c_Jump",
    "c_Let",
    "c_Loop",
    "c_Switch",
    "c_Try",
    "iterate",
]
