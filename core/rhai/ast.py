"""The Rhai syntax tree: expression and statement nodes, variable declarations, functions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar, dataclass_transform

from core.rhai.errors import Pos

T = TypeVar("T")


@dataclass_transform(eq_default=False, field_specifiers=(field,))
def tree(cls: type[T]) -> type[T]:
    """A syntax-tree class: slotted, its fields (in order) its constructor's parameters.

    Equality and hashing stay by identity: decls and nodes are dict keys, and two nodes
    that look alike at different places are different nodes. The repr stays object's,
    so printing a node does not print its whole subtree.
    """
    return dataclass(slots=True, eq=False, repr=False)(cls)


@tree
class Decl:
    """One declared variable (let, const, parameter, loop or catch variable, capture).

    The parser resolves every variable use to its `Decl`; ``captured`` is set when a
    closure captures it, so the variable lives in a shared cell.
    """

    name: str
    const: bool = False
    captured: bool = field(default=False, init=False)
    slot: int = field(default=-1, init=False)

    def __repr__(self) -> str:
        return f"Decl({self.name!r})"


@tree
class Node:
    """Base of every node; ``pos`` is (line, col)."""

    pos: Pos


@tree
class Lit(Node):
    """A constant value."""

    value: Any


@tree
class Interp(Node):
    """A back-tick string with ``${...}`` parts."""

    parts: list[Node]


@tree
class ArrayLit(Node):
    """``[a, b, c]``."""

    items: list[Node]


@tree
class MapLit(Node):
    """``#{a: 1, "b": 2}``."""

    items: list[tuple[str, Node]]


@tree
class Var(Node):
    """A variable use; ``decl`` is None when the parser could not resolve it."""

    name: str
    decl: Decl | None
    ns: str = ""


@tree
class This(Node):
    """``this``."""


@tree
class Unary(Node):
    """``-x``, ``+x``, ``!x``."""

    op: str
    expr: Node


@tree
class Binary(Node):
    """Any binary operator, including ``&&``, ``||``, ``??``, ``in`` and ranges."""

    op: str
    lhs: Node | None
    rhs: Node | None


@tree
class Index(Node):
    """``a[i]`` or ``a?[i]``."""

    target: Node
    index: Node
    safe: bool


@tree
class Prop(Node):
    """``a.b`` or ``a?.b``."""

    target: Node
    name: str
    safe: bool


@tree
class Call(Node):
    """``f(args)``, ``ns::f(args)`` or ``f!(args)`` (run in the caller's scope)."""

    name: str
    args: list[Node]
    ns: str = ""
    bang: bool = False
    # For f!(..) and is_def_var(..): the variables visible at the call, by name.
    visible: dict[str, Decl] = field(default_factory=dict, init=False)


@tree
class MethodCall(Node):
    """``a.f(args)`` or ``a?.f(args)``."""

    target: Node
    name: str
    args: list[Node]
    safe: bool


@tree
class FnDef(Node):
    """A function: ``fn name(params) { body }``, or a closure (``name`` is empty).

    ``captures`` pairs each captured outer variable with its declaration inside.
    """

    name: str
    params: list[Decl]
    body: Block
    captures: list[tuple[Decl, Decl]] = field(default_factory=list, init=False)
    decls: list[Decl] = field(default_factory=list, init=False)
    has_eval: bool = field(default=False, init=False)
    private: bool = field(default=False, init=False)


@tree
class Closure(Node):
    """An anonymous function expression."""

    fn: FnDef


@tree
class If(Node):
    """``if cond { } else { }``."""

    cond: Node
    then: Node
    orelse: Node | None


@tree
class SwitchCase:
    """One arm: constant values or an integer range, an optional condition, a body."""

    values: list[Any]
    range: tuple[int, int, bool] | None
    cond: Node | None
    body: Node


@tree
class Switch(Node):
    """``switch x { ... }``."""

    expr: Node
    cases: list[SwitchCase]
    default: Node | None


@tree
class Loop(Node):
    """``while``/``loop``/``do``: ``cond`` None loops forever; ``until`` negates it."""

    cond: Node | None
    body: Block
    post: bool
    until: bool


@tree
class For(Node):
    """``for x in expr { }`` or ``for (x, i) in expr { }``."""

    var: Decl
    counter: Decl | None
    iterable: Node
    body: Block


@tree
class Block(Node):
    """``{ stmts }``; its value is the last statement's value."""

    stmts: list[Node]


@tree
class Let(Node):
    """``let x = v`` / ``const x = v``."""

    decl: Decl
    expr: Node | None


@tree
class Assign(Node):
    """``target = value`` or ``target op= value`` (``op`` is the operator without ``=``)."""

    target: Node
    op: str
    value: Node


@tree
class Jump(Node):
    """``break [v]``, ``continue``, ``return [v]`` or ``throw [v]``."""

    kind: str
    value: Node | None


@tree
class Try(Node):
    """``try { } catch (err) { }``."""

    body: Block
    var: Decl | None
    catch: Block


@tree
class Script:
    """A parsed script: its top-level body (a function without parameters) and functions."""

    main: FnDef
    functions: dict[tuple[str, int], FnDef]
