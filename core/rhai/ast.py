"""The Rhai syntax tree: expression and statement nodes, variable declarations, functions."""

from __future__ import annotations

from typing import Any

from core.rhai.errors import Pos


class Decl:
    """One declared variable (let, const, parameter, loop or catch variable, capture).

    The parser resolves every variable use to its `Decl`; ``captured`` is set when a
    closure captures it, so the variable lives in a shared cell.
    """

    __slots__ = ("captured", "const", "name", "slot")

    def __init__(self, name: str, const: bool = False) -> None:
        self.name = name
        self.const = const
        self.captured = False
        self.slot = -1

    def __repr__(self) -> str:
        return f"Decl({self.name!r})"


class Node:
    """Base of every node; ``pos`` is (line, col)."""

    __slots__ = ("pos",)

    def __init__(self, pos: Pos) -> None:
        self.pos = pos


class Lit(Node):
    """A constant value."""

    __slots__ = ("value",)

    def __init__(self, pos: Pos, value: Any) -> None:
        super().__init__(pos)
        self.value = value


class Interp(Node):
    """A back-tick string with ``${...}`` parts."""

    __slots__ = ("parts",)

    def __init__(self, pos: Pos, parts: list[Node]) -> None:
        super().__init__(pos)
        self.parts = parts


class ArrayLit(Node):
    """``[a, b, c]``."""

    __slots__ = ("items",)

    def __init__(self, pos: Pos, items: list[Node]) -> None:
        super().__init__(pos)
        self.items = items


class MapLit(Node):
    """``#{a: 1, "b": 2}``."""

    __slots__ = ("items",)

    def __init__(self, pos: Pos, items: list[tuple[str, Node]]) -> None:
        super().__init__(pos)
        self.items = items


class Var(Node):
    """A variable use; ``decl`` is None when the parser could not resolve it."""

    __slots__ = ("decl", "name", "ns")

    def __init__(self, pos: Pos, name: str, decl: Decl | None, ns: str = "") -> None:
        super().__init__(pos)
        self.name = name
        self.decl = decl
        self.ns = ns


class This(Node):
    """``this``."""

    __slots__ = ()


class Unary(Node):
    """``-x``, ``+x``, ``!x``."""

    __slots__ = ("expr", "op")

    def __init__(self, pos: Pos, op: str, expr: Node) -> None:
        super().__init__(pos)
        self.op = op
        self.expr = expr


class Binary(Node):
    """Any binary operator, including ``&&``, ``||``, ``??``, ``in`` and ranges."""

    __slots__ = ("lhs", "op", "rhs")

    def __init__(self, pos: Pos, op: str, lhs: Node | None, rhs: Node | None) -> None:
        super().__init__(pos)
        self.op = op
        self.lhs = lhs
        self.rhs = rhs


class Index(Node):
    """``a[i]`` or ``a?[i]``."""

    __slots__ = ("index", "safe", "target")

    def __init__(self, pos: Pos, target: Node, index: Node, safe: bool) -> None:
        super().__init__(pos)
        self.target = target
        self.index = index
        self.safe = safe


class Prop(Node):
    """``a.b`` or ``a?.b``."""

    __slots__ = ("name", "safe", "target")

    def __init__(self, pos: Pos, target: Node, name: str, safe: bool) -> None:
        super().__init__(pos)
        self.target = target
        self.name = name
        self.safe = safe


class Call(Node):
    """``f(args)``, ``ns::f(args)`` or ``f!(args)`` (run in the caller's scope)."""

    __slots__ = ("args", "bang", "name", "ns", "visible")

    def __init__(self, pos: Pos, name: str, args: list[Node], ns: str = "", bang: bool = False):
        super().__init__(pos)
        self.name = name
        self.args = args
        self.ns = ns
        self.bang = bang
        # For f!(..) and is_def_var(..): the variables visible at the call, by name.
        self.visible: dict[str, Decl] = {}


class MethodCall(Node):
    """``a.f(args)`` or ``a?.f(args)``."""

    __slots__ = ("args", "name", "safe", "target")

    def __init__(self, pos: Pos, target: Node, name: str, args: list[Node], safe: bool) -> None:
        super().__init__(pos)
        self.target = target
        self.name = name
        self.args = args
        self.safe = safe


class FnDef(Node):
    """A function: ``fn name(params) { body }``, or a closure (``name`` is empty).

    ``captures`` pairs each captured outer variable with its declaration inside.
    """

    __slots__ = ("body", "captures", "decls", "has_eval", "name", "params", "private")

    def __init__(self, pos: Pos, name: str, params: list[Decl], body: Block) -> None:
        super().__init__(pos)
        self.name = name
        self.params = params
        self.body = body
        self.captures: list[tuple[Decl, Decl]] = []
        self.decls: list[Decl] = []
        self.has_eval = False
        self.private = False


class Closure(Node):
    """An anonymous function expression."""

    __slots__ = ("fn",)

    def __init__(self, pos: Pos, fn: FnDef) -> None:
        super().__init__(pos)
        self.fn = fn


class If(Node):
    """``if cond { } else { }``."""

    __slots__ = ("cond", "orelse", "then")

    def __init__(self, pos: Pos, cond: Node, then: Node, orelse: Node | None) -> None:
        super().__init__(pos)
        self.cond = cond
        self.then = then
        self.orelse = orelse


class SwitchCase:
    """One arm: constant values or an integer range, an optional condition, a body."""

    __slots__ = ("body", "cond", "range", "values")

    def __init__(
        self, values: list[Any], rng: tuple[int, int, bool] | None, cond: Node | None, body: Node
    ) -> None:
        self.values = values
        self.range = rng
        self.cond = cond
        self.body = body


class Switch(Node):
    """``switch x { ... }``."""

    __slots__ = ("cases", "default", "expr")

    def __init__(self, pos: Pos, expr: Node, cases: list[SwitchCase], default: Node | None):
        super().__init__(pos)
        self.expr = expr
        self.cases = cases
        self.default = default


class Loop(Node):
    """``while``/``loop``/``do``: ``cond`` None loops forever; ``until`` negates it."""

    __slots__ = ("body", "cond", "post", "until")

    def __init__(self, pos: Pos, cond: Node | None, body: Block, post: bool, until: bool):
        super().__init__(pos)
        self.cond = cond
        self.body = body
        self.post = post
        self.until = until


class For(Node):
    """``for x in expr { }`` or ``for (x, i) in expr { }``."""

    __slots__ = ("body", "counter", "iterable", "var")

    def __init__(self, pos: Pos, var: Decl, counter: Decl | None, iterable: Node, body: Block):
        super().__init__(pos)
        self.var = var
        self.counter = counter
        self.iterable = iterable
        self.body = body


class Block(Node):
    """``{ stmts }``; its value is the last statement's value."""

    __slots__ = ("stmts",)

    def __init__(self, pos: Pos, stmts: list[Node]) -> None:
        super().__init__(pos)
        self.stmts = stmts


class Let(Node):
    """``let x = v`` / ``const x = v``."""

    __slots__ = ("decl", "expr")

    def __init__(self, pos: Pos, decl: Decl, expr: Node | None) -> None:
        super().__init__(pos)
        self.decl = decl
        self.expr = expr


class Assign(Node):
    """``target = value`` or ``target op= value`` (``op`` is the operator without ``=``)."""

    __slots__ = ("op", "target", "value")

    def __init__(self, pos: Pos, target: Node, op: str, value: Node) -> None:
        super().__init__(pos)
        self.target = target
        self.op = op
        self.value = value


class Jump(Node):
    """``break [v]``, ``continue``, ``return [v]`` or ``throw [v]``."""

    __slots__ = ("kind", "value")

    def __init__(self, pos: Pos, kind: str, value: Node | None) -> None:
        super().__init__(pos)
        self.kind = kind
        self.value = value


class Try(Node):
    """``try { } catch (err) { }``."""

    __slots__ = ("body", "catch", "var")

    def __init__(self, pos: Pos, body: Block, var: Decl | None, catch: Block) -> None:
        super().__init__(pos)
        self.body = body
        self.var = var
        self.catch = catch


class Script:
    """A parsed script: its top-level body (a function without parameters) and functions."""

    def __init__(self, main: FnDef, functions: dict[tuple[str, int], FnDef]) -> None:
        self.main = main
        self.functions = functions
