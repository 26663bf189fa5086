"""Parse Rhai expressions: operators by precedence, postfix chains, literals, closures."""

from __future__ import annotations

from typing import Any

from core.rhai import ast as A
from core.rhai.errors import Pos, parse_error
from core.rhai.lexer import Tok
from core.rhai.parse_base import _RANGE_END, CHAIN_FACTOR, PRECEDENCE, ParserBase, _FnScope
from core.rhai.values import Char

_BOOL_OPS = frozenset(["&&", "||", "==", "!=", "<", "<=", ">", ">=", "in", "!in"])
_KEYWORD_KEYS = frozenset(["this", "fn", "let", "if", "else", "true", "false", "in", "for"])


class ExprParser(ParserBase):
    """Expressions; statements and control flow come from `core.rhai.parser.Parser`."""

    def parse_block(self, new_scope: bool = True) -> A.Block:
        """``{ stmts }`` (see `Parser`)."""
        raise NotImplementedError

    def parse_stmt(self, top: bool = False, closure_body: bool = False) -> A.Node:
        """One statement (see `Parser`)."""
        raise NotImplementedError

    def parse_if(self) -> A.Node:
        """``if`` (see `Parser`)."""
        raise NotImplementedError

    def parse_switch(self) -> A.Node:
        """``switch`` (see `Parser`)."""
        raise NotImplementedError

    def parse_loop(self) -> A.Node:
        """Loops (see `Parser`)."""
        raise NotImplementedError

    def parse_try(self) -> A.Node:
        """``try``/``catch`` (see `Parser`)."""
        raise NotImplementedError

    def parse_expr(self) -> A.Node:
        """A full expression."""
        tok = self.peek()
        self.enter(tok.pos)
        try:
            return self.parse_binary(0)
        finally:
            self.depth -= 1

    def parse_binary(self, min_prec: int) -> A.Node:
        """Precedence climbing over `PRECEDENCE`."""
        tok = self.peek()
        lhs: A.Node | None = None if tok.kind in ("..", "..=") else self.parse_unary()
        chain = 0
        while True:
            tok = self.peek()
            prec = PRECEDENCE.get(tok.kind)
            if prec is None or prec < min_prec or (prec == min_prec and tok.kind != "**"):
                if lhs is None:
                    raise self.unexpected(tok, "an expression")
                return lhs
            op = self.next().kind
            chain += 1
            if self.limit and chain > CHAIN_FACTOR * self.limit:
                # Each operator nests the tree one level deeper: bound it like nesting.
                raise parse_error("ExprTooDeep", "Expression exceeds maximum complexity", tok.pos)
            rhs: A.Node | None
            if op in ("..", "..=") and self.peek().kind in _RANGE_END:
                rhs = None
            elif op == "**":
                self.enter(tok.pos)
                try:
                    rhs = self.parse_binary(prec)
                finally:
                    self.depth -= 1
            else:
                rhs = self.parse_binary(prec + 1)
            if lhs is None and op not in ("..", "..="):
                raise self.unexpected(tok, "an expression")
            lhs = A.Binary(tok.pos, op, lhs, rhs)

    def parse_unary(self) -> A.Node:
        """``-x``, ``+x``, ``!x`` or a postfix expression."""
        tok = self.peek()
        if tok.kind in ("-", "+", "!"):
            self.next()
            self.enter(tok.pos)
            try:
                expr = self.parse_unary()
            finally:
                self.depth -= 1
            if tok.kind == "-" and isinstance(expr, A.Lit) and type(expr.value) in (int, float):
                return self.number(tok.pos, -expr.value)
            if tok.kind == "+" and isinstance(expr, A.Lit) and type(expr.value) in (int, float):
                return self.number(tok.pos, expr.value)
            return A.Unary(tok.pos, tok.kind, expr)
        return self.parse_postfix(self.parse_primary())

    def number(self, pos: Pos, value: Any) -> A.Lit:
        """A numeric literal, checked to fit in an i64."""
        if type(value) is int and not -(1 << 63) <= value < (1 << 63):
            raise parse_error("MalformedNumber", f"Integer out of range: {value}", pos)
        return A.Lit(pos, value)

    def parse_args(self) -> list[A.Node]:
        """``(a, b, c)`` after the name of a function."""
        self.expect("(")
        return self.parse_items(")")

    def parse_items(self, close: str) -> list[A.Node]:
        """Expressions separated by commas up to ``close`` (a trailing comma is allowed)."""
        items: list[A.Node] = []
        while not self.accept(close):
            items.append(self.parse_expr())
            if not self.accept(","):
                self.expect(close, f"'{close}' or ','")
                break
        return items

    def parse_postfix(self, node: A.Node) -> A.Node:
        """Property access, method calls and indexing."""
        chain = 0
        while True:
            tok = self.peek()
            kind = tok.kind
            if kind in (".", "?.", "[", "?["):
                chain += 1
                if self.limit and chain > CHAIN_FACTOR * self.limit:
                    raise parse_error("ExprTooDeep", "Expression exceeds maximum complexity",
                                      tok.pos)  # fmt: skip
            if kind in (".", "?."):
                self.next()
                name = self.peek()
                if name.kind not in ("id",) and name.kind not in ("this",):
                    raise parse_error("PropertyExpected", "Expecting name of a property", name.pos)
                self.next()
                if self.peek().kind == "(":
                    node = A.MethodCall(name.pos, node, name.val, self.parse_args(), kind == "?.")
                else:
                    if self.peek().kind == "::":
                        raise parse_error("PropertyExpected", "Invalid property", self.peek().pos)
                    node = A.Prop(name.pos, node, name.val, kind == "?.")
            elif kind in ("[", "?["):
                self.next()
                index = self.parse_expr()
                self.expect("]", "']'")
                self.check_index(node, index)
                node = A.Index(tok.pos, node, index, kind == "?[")
            else:
                return node

    def check_index(self, target: A.Node, index: A.Node) -> None:
        """Literal indices of the wrong type on literal arrays, maps and strings."""
        is_bool = (isinstance(index, A.Binary) and index.op in _BOOL_OPS) or (
            isinstance(index, A.Unary) and index.op == "!"
        )
        if not isinstance(index, A.Lit | A.Interp) and not is_bool:
            return
        value = index.value if isinstance(index, A.Lit) else "" if not is_bool else True
        kind = type(value)
        if isinstance(target, A.MapLit) and kind is not str:
            raise parse_error("MalformedIndexExpr", "Object map expects string index", index.pos)
        sequence = isinstance(target, A.ArrayLit) or (
            isinstance(target, A.Lit) and type(target.value) is str
        )
        if sequence and kind is not int:
            raise parse_error(
                "MalformedIndexExpr", "Array or string expects numeric index", index.pos
            )

    def parse_primary(self) -> A.Node:
        """Literals, variables, calls, blocks, closures and statement-expressions."""
        tok = self.peek()
        kind = tok.kind
        pos = tok.pos
        if kind in ("int", "float"):
            self.next()
            if kind == "int" and tok.val >= 1 << 63 and self.toks[self.p - 2].kind == "-":
                return A.Lit(pos, tok.val)  # -9223372036854775808: folded by the caller
            return self.number(pos, tok.val)
        if kind == "str":
            self.next()
            return A.Lit(pos, tok.val)
        if kind == "char":
            self.next()
            return A.Lit(pos, Char(tok.val))
        if kind == "istr":
            self.next()
            return self.interpolation(tok)
        if kind in ("true", "false"):
            self.next()
            return A.Lit(pos, kind == "true")
        if kind == "(":
            self.next()
            close = self.peek()
            if close.kind == ")" and close.line == tok.line and close.col == tok.col + 1:
                self.next()
                return A.Lit(pos, None)
            expr = self.parse_expr()
            self.expect(")", "')'")
            return expr
        if kind == "[":
            return self.parse_array()
        if kind == "#{":
            return self.parse_map()
        if kind == "id":
            return self.parse_name()
        if kind == "this":
            self.next()
            return A.This(pos)
        if kind == "{":
            return self.parse_block()
        if kind in ("|", "||"):
            return self.parse_closure()
        if kind == "if":
            return self.parse_if()
        if kind == "switch":
            return self.parse_switch()
        if kind in ("while", "loop", "do", "for"):
            return self.parse_loop()
        if kind == "try":
            return self.parse_try()
        if kind in ("break", "continue", "return", "throw"):
            return self.parse_stmt(closure_body=True)
        if kind == "global" and self.peek(1).kind == "::":
            self.next()
            self.next()
            name = self.ident("a constant name")
            return A.Var(name.pos, name.val, None, "global")
        if kind in ("fn", "let", "const"):
            raise parse_error(
                "WrongFnDefinition" if kind == "fn" else "MissingToken",
                f"'{kind}' is not allowed here",
                pos,
            )
        raise self.unexpected(tok, "an expression")

    def interpolation(self, tok: Tok) -> A.Node:
        """Parse each ``${...}`` part of a back-tick string in the current scope."""
        parts: list[A.Node] = []
        saved = self.toks, self.p, self.more
        try:
            for part in tok.val:
                if isinstance(part, str):
                    parts.append(A.Lit(tok.pos, part))
                    continue
                self.toks, self.p, self.more = part, 0, None
                stmts: list[A.Node] = []
                while self.peek().kind != "eof":
                    if self.accept(";"):
                        continue
                    stmts.append(self.parse_stmt())
                parts.append(A.Block(tok.pos, stmts))
        finally:
            self.toks, self.p, self.more = saved
        return A.Interp(tok.pos, parts)

    def parse_name(self) -> A.Node:
        """A variable, a call ``f(..)``/``f!(..)`` or a namespaced call ``ns::f(..)``."""
        tok = self.next()
        name = tok.val
        nxt = self.peek()
        if nxt.kind == "::":
            self.next()
            fname = self.ident("a function name")
            if self.peek().kind != "(":
                return A.Var(fname.pos, fname.val, None, name)
            return A.Call(tok.pos, fname.val, self.parse_args(), ns=name)
        if nxt.kind == "(":
            if name == "eval":
                self.scope.fn.has_eval = True
            call = A.Call(tok.pos, name, self.parse_args())
            if name == "is_def_var":
                call.visible = self.visible()
            return call
        if nxt.kind == "!" and self.peek(1).kind == "(":
            self.next()
            call = A.Call(tok.pos, name, self.parse_args(), bang=True)
            call.visible = self.visible()
            return call
        return A.Var(tok.pos, name, self.resolve(name))

    def parse_array(self) -> A.Node:
        """``[a, b, ...]`` (a trailing comma is allowed)."""
        start = self.expect("[")
        return A.ArrayLit(start.pos, self.parse_items("]"))

    def parse_map(self) -> A.Node:
        """``#{name: value, "key": value}``."""
        start = self.expect("#{")
        items: list[tuple[str, A.Node]] = []
        seen: set[str] = set()
        while not self.accept("}"):
            key = self.next()
            if key.kind not in ("id", "str") and key.kind not in _KEYWORD_KEYS:
                raise parse_error("PropertyExpected", "Expecting name of a property", key.pos)
            if key.val in seen:
                raise parse_error("DuplicatedProperty", f"Duplicated property '{key.val}'", key.pos)
            seen.add(key.val)
            self.expect(":", "':'")
            items.append((key.val, self.parse_expr()))
            if not self.accept(","):
                self.expect("}", "'}' or ','")
                break
        return A.MapLit(start.pos, items)

    def parse_closure(self) -> A.Node:
        """``|a, b| body`` or ``|| body``: captures outer variables it names."""
        start = self.next()
        fn = A.FnDef(start.pos, "", [], A.Block(start.pos, []))
        scope = _FnScope(self.scope, fn, True)
        self.scope = scope
        try:
            if start.kind == "|":
                while not self.accept("|"):
                    tok = self.ident("a parameter name")
                    if any(p.name == tok.val for p in fn.params):
                        raise parse_error(
                            "FnDuplicatedParam", f"Duplicated parameter '{tok.val}'", tok.pos
                        )
                    fn.params.append(self.declare(tok.val))
                    if not self.accept(","):
                        self.expect("|", "'|' or ','")
                        break
            scope.blocks.append({})
            if self.peek().kind == "{":
                body: A.Node = self.parse_block()
            else:
                body = self.parse_stmt(closure_body=True)
            fn.body = body if isinstance(body, A.Block) else A.Block(body.pos, [body])
        finally:
            self.scope = scope.parent  # type: ignore[assignment]
        return A.Closure(start.pos, fn)
