"""Compile operators and assignments, with int fast paths built from fixed templates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.rhai import ast as A
from core.rhai import ops
from core.rhai.errors import Pos, RhaiError
from core.rhai.runtime import Ev
from core.rhai.values import INT_MAX, INT_MIN

if TYPE_CHECKING:
    from core.rhai.compiler import Compiler


def _not_bool(v: Any, pos: Pos) -> RhaiError:
    from core.rhai.compiler import not_bool

    return not_bool(v, pos)


def c_Unary(c: Compiler, node: A.Unary) -> Ev:
    e = c.expr(node.expr)
    fn = {"-": ops.negate, "+": ops.plus, "!": ops.logical_not}[node.op]
    pos = node.pos
    if node.op == "!":

        def run_not(f: Any) -> Any:
            v = e(f)
            if type(v) is bool:
                return not v
            raise _not_bool(v, pos)

        return run_not

    def run(f: Any) -> Any:
        try:
            return fn(e(f))
        except RhaiError as err:
            raise err.at(pos) from None

    return run


def c_Binary(c: Compiler, node: A.Binary) -> Ev:
    op, pos = node.op, node.pos
    if op in ("..", "..="):
        incl = op == "..="
        lo = c.expr(node.lhs) if node.lhs is not None else (lambda f: None)
        hi = c.expr(node.rhs) if node.rhs is not None else (lambda f: None)

        def rng(f: Any) -> Any:
            try:
                return ops.make_range(lo(f), hi(f), incl)
            except RhaiError as err:
                raise err.at(pos) from None

        return rng
    assert node.lhs is not None
    assert node.rhs is not None
    lhs, rhs = c.expr(node.lhs), c.expr(node.rhs)
    if op in ("&&", "||"):
        want = op == "||"

        def logic(f: Any) -> Any:
            a = lhs(f)
            if type(a) is not bool:
                raise _not_bool(a, node.lhs.pos if node.lhs else pos)
            if a is want:
                return a
            b = rhs(f)
            if type(b) is not bool:
                raise _not_bool(b, node.rhs.pos if node.rhs else pos)
            return b

        return logic
    if op == "??":

        def coalesce(f: Any) -> Any:
            a = lhs(f)
            return rhs(f) if a is None else a

        return coalesce
    fn = ops.BINARY[op]
    check = c.rt.check_size
    special = _specialized(
        c, node, lhs, rhs, fn if op != "+" else lambda a, b: check(ops.add(a, b))
    )
    if special is not None:
        return special
    if op == "+":

        def plus(f: Any) -> Any:
            a, b = lhs(f), rhs(f)
            if type(a) is int and type(b) is int:
                r = a + b
                if INT_MIN <= r <= INT_MAX:
                    return r
            try:
                return check(ops.add(a, b))
            except RhaiError as err:
                raise err.at(pos) from None

        return plus
    if op == "-":

        def minus(f: Any) -> Any:
            a, b = lhs(f), rhs(f)
            if type(a) is int and type(b) is int:
                r = a - b
                if INT_MIN <= r <= INT_MAX:
                    return r
            try:
                return ops.sub(a, b)
            except RhaiError as err:
                raise err.at(pos) from None

        return minus
    fast = _INT_COMPARE.get(op)
    if fast is not None:

        def compare(f: Any) -> Any:
            a, b = lhs(f), rhs(f)
            if type(a) is int and type(b) is int:
                return fast(a, b)
            return fn(a, b)

        return compare

    def binary(f: Any) -> Any:
        try:
            return fn(lhs(f), rhs(f))
        except RhaiError as err:
            raise err.at(pos) from None

    return binary


_FAST_INT = {
    "+": "r = a + b\n            if -9223372036854775808 <= r <= 9223372036854775807:\n"
         "                return r",
    "-": "r = a - b\n            if -9223372036854775808 <= r <= 9223372036854775807:\n"
         "                return r",
    "*": "r = a * b\n            if -9223372036854775808 <= r <= 9223372036854775807:\n"
         "                return r",
    "%": "if a >= 0 and b > 0:\n                return a % b",
    "/": "if a >= 0 and b > 0:\n                return a // b",
    "<": "return a < b", "<=": "return a <= b", ">": "return a > b", ">=": "return a >= b",
    "==": "return a == b", "!=": "return a != b",
}  # fmt: skip
_TEMPLATE = """
def make(i, j, c, lhs, rhs, slow, pos, RhaiError):
    def ev(f):
        a = {a}
        b = {b}
        if type(a) is int and type(b) is int:
            {fast}
        try:
            return slow(a, b)
        except RhaiError as err:
            raise err.at(pos) from None
    return ev
"""
_MADE: dict[tuple[str, str, str], Any] = {}


def _operand(c: Compiler, node: A.Node | None, which: str, ev: Ev) -> tuple[str, Any]:
    if isinstance(node, A.Lit) and type(node.value) is int:
        return "c", node.value
    if (
        isinstance(node, A.Var)
        and not c.dynamic
        and node.decl is not None
        and not node.ns
        and not node.decl.captured
    ):
        return f"f[{which}]", node.decl.slot
    return f"{'lhs' if which == 'i' else 'rhs'}(f)", ev


def _specialized(c: Compiler, node: A.Binary, lhs: Ev, rhs: Ev, slow: Any) -> Ev | None:
    """``x < 2``, ``a + b``: int fast paths without a call per operand (from a template)."""
    fast = _FAST_INT.get(node.op)
    if fast is None:
        return None
    (ka, va), (kb, vb) = _operand(c, node.lhs, "i", lhs), _operand(c, node.rhs, "j", rhs)
    if ka == "c" and kb == "c":
        return None
    key = (ka, kb, node.op)
    make = _MADE.get(key)
    if make is None:
        scope: dict[str, Any] = {}
        exec(_TEMPLATE.format(a=ka, b=kb, fast=fast), scope)
        make = _MADE[key] = scope["make"]
    i = va if ka.startswith("f[") else 0
    j = vb if kb.startswith("f[") else 0
    const = va if ka == "c" else vb if kb == "c" else None
    ev: Ev = make(i, j, const, lhs, rhs, slow, node.pos, RhaiError)
    return ev


_INT_COMPARE = {
    "<": int.__lt__, "<=": int.__le__, ">": int.__gt__, ">=": int.__ge__,
    "==": int.__eq__, "!=": int.__ne__,
}  # fmt: skip


def c_Assign(c: Compiler, node: A.Assign) -> Ev:
    get, set_ = c.place(node.target)
    assert set_ is not None
    pos = node.pos
    value = c.value(node.value) if isinstance(node.target, A.Var | A.This) else c.expr(node.value)
    if not node.op:

        def assign(f: Any) -> None:
            set_(f, value(f))

        return assign
    fn = ops.COMPOUND[node.op]
    check = c.rt.check_size
    if node.op == "+":
        limit = c.rt.limits.max_string_size
        target = node.target
        if (
            isinstance(target, A.Var)
            and target.decl is not None
            and not target.decl.captured
            and not c.dynamic
            and not target.ns
        ):
            slot = target.decl.slot

            def add_assign_slot(f: Any) -> None:
                b = value(f)
                a = f[slot]
                ta = type(a)
                if ta is int and type(b) is int:
                    r = a + b
                    if INT_MIN <= r <= INT_MAX:
                        f[slot] = r
                        return
                elif ta is str and type(b) is str:
                    # Drop the frame's reference first: CPython then appends in place.
                    f[slot] = None
                    a += b
                    f[slot] = a
                    if limit and len(a) > limit:
                        check(a)
                    return
                try:
                    f[slot] = check(ops.add_assign(a, b))
                except RhaiError as err:
                    raise err.at(pos) from None

            return add_assign_slot

        def add_assign(f: Any) -> None:
            b = value(f)
            a = get(f)
            ta = type(a)
            if ta is int and type(b) is int:
                r = a + b
                if INT_MIN <= r <= INT_MAX:
                    set_(f, r)
                    return
            elif ta is str and type(b) is str:
                s = a + b
                if not limit or len(s) <= limit:
                    set_(f, s)
                    return
            try:
                set_(f, check(ops.add_assign(a, b)))
            except RhaiError as err:
                raise err.at(pos) from None

        return add_assign

    def compound(f: Any) -> None:
        b = value(f)
        try:
            set_(f, check(fn(get(f), b)))
        except RhaiError as err:
            raise err.at(pos) from None

    return compound
