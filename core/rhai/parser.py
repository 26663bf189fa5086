"""Rhai parser: tokens to a syntax tree, resolving each variable to its declaration."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from core.rhai import ast as A
from core.rhai.errors import Pos, RhaiParseError, parse_error
from core.rhai.lexer import Lexer, Tok
from core.rhai.values import Char

# Rhai's binary operator precedence; ** binds to the right.
PRECEDENCE = {
    "||": 30, "|": 30, "^": 30,
    "&&": 60, "&": 60,
    "==": 90, "!=": 90,
    "in": 110, "!in": 110,
    "<": 130, "<=": 130, ">": 130, ">=": 130,
    "??": 135,
    "..": 140, "..=": 140,
    "+": 150, "-": 150,
    "*": 180, "/": 180, "%": 180,
    "**": 190,
    "<<": 210, ">>": 210,
}  # fmt: skip
ASSIGN_OPS = {
    "=": "", "+=": "+", "-=": "-", "*=": "*", "/=": "/", "%=": "%", "**=": "**",
    "<<=": "<<", ">>=": ">>", "&=": "&", "|=": "|", "^=": "^",
}  # fmt: skip
# A chain of binary operators may be this many times longer than the nesting limit.
CHAIN_FACTOR = 16
# Tokens after which an open-ended range (``a..``) ends.
_RANGE_END = frozenset(["]", ")", "}", ",", ";", "eof", "=>"])
_NEEDS_NO_SEMI = (A.If, A.Switch, A.Loop, A.For, A.Block, A.Try)


class _FnScope:
    """Parse-time scopes of one function body: a stack of blocks, name to `Decl`."""

    def __init__(self, parent: _FnScope | None, fn: A.FnDef, closure: bool) -> None:
        self.parent = parent
        self.fn = fn
        self.closure = closure
        self.blocks: list[dict[str, A.Decl]] = [{}]
        self.loops = 0


class Parser:
    """Parses one script; ``max_expr_depth`` bounds nesting (0: no limit)."""

    def __init__(self, src: str, max_expr_depth: int = 64, max_fn_expr_depth: int = 32) -> None:
        self.toks: list[Tok] = []
        self.more: Iterator[Tok] | None = Lexer(src).iter_tokens()
        self.p = 0
        self.max_depth = max_expr_depth
        self.max_fn_depth = max_fn_expr_depth
        self.depth = 0
        self.limit = max_expr_depth
        main = A.FnDef((1, 1), "", [], A.Block((1, 1), []))
        self.scope = _FnScope(None, main, False)
        self.functions: dict[tuple[str, int], A.FnDef] = {}

    # -- tokens ----------------------------------------------------------------------------
    def peek(self, k: int = 0) -> Tok:
        """The token ``k`` ahead (lexed on demand)."""
        toks = self.toks
        idx = self.p + k
        if idx < len(toks):
            return toks[idx]
        if self.more is not None:
            more = self.more
            while len(toks) <= idx:
                tok = next(more)
                toks.append(tok)
                if tok.kind == "eof":
                    self.more = None
                    break
        return toks[min(idx, len(toks) - 1)]

    def next(self) -> Tok:
        """Consume and return the current token."""
        tok = self.peek()
        if tok.kind != "eof":
            self.p += 1
        return tok

    def accept(self, kind: str) -> Tok | None:
        """Consume the current token if it is ``kind``."""
        if self.peek().kind == kind:
            return self.next()
        return None

    def expect(self, kind: str, what: str = "") -> Tok:
        """Consume a ``kind`` token or fail naming what was expected."""
        tok = self.peek()
        if tok.kind != kind:
            raise self.unexpected(tok, what or f"'{kind}'")
        return self.next()

    def unexpected(self, tok: Tok, what: str) -> RhaiParseError:
        """An error about ``tok`` where ``what`` was expected."""
        if tok.kind == "eof":
            return parse_error("UnexpectedEOF", f"Script is incomplete: expecting {what}", tok.pos)
        shown = tok.kind if tok.kind not in ("int", "float", "str", "char", "id") else tok.val
        return parse_error("MissingToken", f"Expecting {what}, found '{shown}'", tok.pos)

    def ident(self, what: str = "a name") -> Tok:
        """Consume an identifier."""
        tok = self.peek()
        if tok.kind != "id":
            raise self.unexpected(tok, what)
        return self.next()

    def enter(self, pos: Pos) -> None:
        """One level deeper; fail with ExprTooDeep past the limit."""
        self.depth += 1
        if self.limit and self.depth > self.limit:
            raise parse_error("ExprTooDeep", "Expression exceeds maximum complexity", pos)

    # -- scopes ----------------------------------------------------------------------------
    def declare(self, name: str, const: bool = False) -> A.Decl:
        """Declare a variable in the innermost block."""
        decl = A.Decl(name, const)
        self.scope.blocks[-1][name] = decl
        self.scope.fn.decls.append(decl)
        return decl

    def resolve(self, name: str, scope: _FnScope | None = None) -> A.Decl | None:
        """Find the declaration a name refers to; closures capture outer variables."""
        scope = scope or self.scope
        for block in reversed(scope.blocks):
            decl = block.get(name)
            if decl is not None:
                return decl
        if scope.closure and scope.parent is not None:
            outer = self.resolve(name, scope.parent)
            if outer is None:
                return None
            outer.captured = True
            inner = A.Decl(name, outer.const)
            inner.captured = True
            scope.fn.captures.append((outer, inner))
            scope.fn.decls.append(inner)
            scope.blocks[0][name] = inner
            return inner
        return None

    def visible(self) -> dict[str, A.Decl]:
        """The variables of the current function visible here, by name."""
        seen: dict[str, A.Decl] = {}
        for block in self.scope.blocks:
            seen.update(block)
        return seen

    # -- script ----------------------------------------------------------------------------
    def parse_script(self) -> A.Script:
        """The whole script."""
        main = self.scope.fn
        stmts = main.body.stmts
        while self.peek().kind != "eof":
            if self.peek().kind == ";":
                self.next()
                continue
            if self.peek().kind == "fn" or (
                self.peek().kind == "private" and self.peek(1).kind == "fn"
            ):
                self.parse_fn()
                continue
            stmts.append(self.parse_stmt(top=True))
        return A.Script(main, self.functions)

    def parse_fn(self) -> None:
        """``[private] fn name(params) { body }`` at the top level."""
        private = bool(self.accept("private"))
        start = self.expect("fn")
        name_tok = self.peek()
        if name_tok.kind != "id":
            raise parse_error("FnMissingName", "Expecting a function name", name_tok.pos)
        self.next()
        fn_name = name_tok.val
        if self.peek().kind == ".":  # fn string.calc(x): a method of one type
            self.next()
            fn_name = f"{fn_name}.{self.ident('a method name').val}"
        fn = A.FnDef(start.pos, fn_name, [], A.Block(start.pos, []))
        fn.private = private
        outer, self.scope = self.scope, _FnScope(None, fn, False)
        saved_depth, saved_limit = self.depth, self.limit
        self.depth, self.limit = 0, self.max_fn_depth
        try:
            if self.peek().kind != "(":
                raise parse_error(
                    "FnMissingParams", f"Expecting parameters for '{fn.name}'", self.peek().pos
                )
            self.next()
            names: list[str] = []
            while not self.accept(")"):
                tok = self.ident("a parameter name")
                if tok.val in names:
                    raise parse_error(
                        "FnDuplicatedParam",
                        f"Duplicated parameter '{tok.val}' in '{fn.name}'",
                        tok.pos,
                    )
                names.append(tok.val)
                fn.params.append(self.declare(tok.val))
                if not self.accept(","):
                    self.expect(")", "')' or ','")
                    break
            if self.peek().kind != "{":
                raise parse_error(
                    "FnMissingBody", f"Expecting a body for '{fn.name}'", self.peek().pos
                )
            fn.body = self.parse_block(new_scope=False)
        finally:
            self.scope = outer
            self.depth, self.limit = saved_depth, saved_limit
        key = (fn.name, len(fn.params))
        if key in self.functions:
            raise parse_error(
                "FnDuplicatedDefinition",
                f"Function '{fn.name}' with {key[1]} parameters is defined twice",
                start.pos,
            )
        self.functions[key] = fn

    # -- statements ------------------------------------------------------------------------
    def parse_block(self, new_scope: bool = True) -> A.Block:
        """``{ stmts }``."""
        start = self.expect("{", "'{'")
        self.enter(start.pos)
        if new_scope:
            self.scope.blocks.append({})
        stmts: list[A.Node] = []
        try:
            while True:
                tok = self.peek()
                if tok.kind == "}":
                    self.next()
                    break
                if tok.kind == ";":
                    self.next()
                    continue
                if tok.kind == "eof":
                    raise parse_error("MissingToken", "Expecting '}' to close the block", start.pos)
                if tok.kind == "fn":
                    raise parse_error(
                        "WrongFnDefinition",
                        "Functions can only be defined at global level",
                        tok.pos,
                    )
                stmts.append(self.parse_stmt())
        finally:
            if new_scope:
                self.scope.blocks.pop()
            self.depth -= 1
        return A.Block(start.pos, stmts)

    def end_stmt(self, node: A.Node) -> None:
        """A statement ends with ``;``, at ``}`` or at the end; blocks need nothing."""
        tok = self.peek()
        if tok.kind in (";",):
            self.next()
        elif tok.kind in ("}", "eof") or isinstance(node, _NEEDS_NO_SEMI):
            return
        else:
            raise parse_error(
                "MissingToken",
                f"Expecting ';' to terminate this statement, found '{tok.val}'",
                tok.pos,
            )

    def parse_stmt(self, top: bool = False, closure_body: bool = False) -> A.Node:
        """One statement (its terminator consumed)."""
        tok = self.peek()
        kind = tok.kind
        node: A.Node
        if kind in ("let", "const"):
            self.next()
            name = self.ident("a variable name")
            expr = self.parse_expr() if self.accept("=") else None
            if kind == "const" and expr is None:
                raise parse_error("MissingToken", "Expecting '=' after a constant name", name.pos)
            node = A.Let(tok.pos, A.Decl(name.val), expr)
            decl = self.declare(name.val, kind == "const")
            node.decl = decl
        elif kind in ("break", "continue"):
            self.next()
            if not self.scope.loops:
                raise parse_error("LoopBreak", f"'{kind}' must be inside a loop", tok.pos)
            value = None
            if kind == "break" and self.peek().kind not in (";", "}", "eof"):
                value = self.parse_expr()
            node = A.Jump(tok.pos, kind, value)
        elif kind in ("return", "throw"):
            self.next()
            value = None
            if self.peek().kind not in (";", "}", "eof"):
                value = self.parse_expr()
            node = A.Jump(tok.pos, kind, value)
        elif kind == "export":
            self.next()
            if not top:
                raise parse_error(
                    "WrongExport", "Export statement can only appear at global level", tok.pos
                )
            if self.peek().kind in ("let", "const"):
                return self.parse_stmt(top)
            self.ident("a variable name")
            if self.accept("as"):
                self.ident("an alias")
            node = A.Lit(tok.pos, None)
        elif kind == "import":
            raise parse_error("WrongImport", "Modules are not supported", tok.pos)
        else:
            node = self.parse_expr()
            op = self.peek().kind
            if op in ASSIGN_OPS:
                op_tok = self.next()
                self.check_lhs(node)
                value = self.parse_expr()
                node = A.Assign(op_tok.pos, node, ASSIGN_OPS[op], value)
        if not closure_body:
            self.end_stmt(node)
        return node

    def check_lhs(self, node: A.Node) -> None:
        """Only variables and their properties/elements can be assigned."""
        if isinstance(node, A.Lit | A.Interp):
            raise parse_error("AssignmentToConstant", "Cannot assign to a constant value", node.pos)
        target = node
        while isinstance(target, A.Index | A.Prop):
            target = target.target
        if isinstance(target, A.Var) and target.decl is not None and target.decl.const:
            raise parse_error(
                "AssignmentToConstant", f"Cannot assign to constant '{target.name}'", node.pos
            )
        if not isinstance(target, A.Var | A.This):
            raise parse_error(
                "AssignmentToInvalidLHS", "Cannot assign to this expression", node.pos
            )

    # -- expressions -----------------------------------------------------------------------
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
        args: list[A.Node] = []
        while not self.accept(")"):
            args.append(self.parse_expr())
            if not self.accept(","):
                self.expect(")", "')' or ','")
                break
        return args

    def parse_postfix(self, node: A.Node) -> A.Node:
        """Property access, method calls and indexing."""
        while True:
            tok = self.peek()
            kind = tok.kind
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
        items: list[A.Node] = []
        while not self.accept("]"):
            items.append(self.parse_expr())
            if not self.accept(","):
                self.expect("]", "']' or ','")
                break
        return A.ArrayLit(start.pos, items)

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

    def parse_if(self) -> A.Node:
        """``if c { } else if c { } else { }``."""
        start = self.expect("if")
        cond = self.parse_expr()
        then = self.parse_block()
        orelse: A.Node | None = None
        if self.accept("else"):
            orelse = self.parse_if() if self.peek().kind == "if" else self.parse_block()
        return A.If(start.pos, cond, then, orelse)

    def case_value(self) -> tuple[Any, A.Node]:
        """A constant in a switch arm: a literal, maybe negative."""
        node = self.parse_unary()
        if not isinstance(node, A.Lit):
            raise parse_error("ExprExpected", "Expecting a constant switch case", node.pos)
        return node.value, node

    def parse_switch(self) -> A.Node:
        """``switch x { 1 | 2 => a, 3..5 => b, v if c => d, _ => e }``."""
        start = self.expect("switch")
        expr = self.parse_expr()
        self.expect("{", "'{'")
        cases: list[A.SwitchCase] = []
        default: A.Node | None = None
        seen_range = False
        while not self.accept("}"):
            tok = self.peek()
            if default is not None:
                raise parse_error(
                    "WrongSwitchDefaultCase", "Default switch case must be last", tok.pos
                )
            values: list[Any] = []
            rng: tuple[int, int, bool] | None = None
            is_default = tok.kind == "id" and tok.val == "_"
            if is_default:
                self.next()
            else:
                while True:
                    value, node = self.case_value()
                    if self.peek().kind in ("..", "..="):
                        incl = self.next().kind == "..="
                        end, _ = self.case_value()
                        if type(value) is not int or type(end) is not int:
                            raise parse_error(
                                "WrongSwitchIntegerCase", "Ranges must be integers", node.pos
                            )
                        rng = (value, end, incl)
                        seen_range = True
                        break
                    if type(value) in (int, float) and seen_range:
                        raise parse_error(
                            "WrongSwitchIntegerCase",
                            "Numeric switch case cannot follow a range case",
                            node.pos,
                        )
                    values.append(value)
                    if not self.accept("|"):
                        break
            cond = None
            if self.accept("if"):
                if is_default:
                    raise parse_error(
                        "WrongSwitchCaseCondition",
                        "Default switch case cannot have a condition",
                        tok.pos,
                    )
                cond = self.parse_expr()
            self.expect("=>", "'=>'")
            body = (
                self.parse_block()
                if self.peek().kind == "{"
                else self.parse_stmt(closure_body=True)
            )
            if not self.accept(",") and self.peek().kind != "}" and not isinstance(body, A.Block):
                raise self.unexpected(self.peek(), "',' or '}'")
            if is_default:
                default = body
                continue
            cases.append(A.SwitchCase(values, rng, cond, body))
        return A.Switch(start.pos, expr, cases, default)

    def loop_body(self) -> A.Block:
        """A loop body: ``break`` and ``continue`` are allowed inside."""
        self.scope.loops += 1
        try:
            return self.parse_block()
        finally:
            self.scope.loops -= 1

    def parse_loop(self) -> A.Node:
        """``while c { }``, ``loop { }``, ``do { } while/until c``, ``for x in e { }``."""
        tok = self.next()
        if tok.kind == "while":
            cond = self.parse_expr()
            return A.Loop(tok.pos, cond, self.loop_body(), False, False)
        if tok.kind == "loop":
            return A.Loop(tok.pos, None, self.loop_body(), False, False)
        if tok.kind == "do":
            body = self.loop_body()
            word = self.next()
            if word.kind not in ("while", "until"):
                raise self.unexpected(word, "'while' or 'until'")
            cond = self.parse_expr()
            return A.Loop(tok.pos, cond, body, True, word.kind == "until")
        paren = self.accept("(")
        name = self.ident("a loop variable")
        counter_name = None
        if paren:
            self.expect(",", "','")
            counter_name = self.ident("a counter variable")
            self.expect(")", "')'")
        self.expect("in", "'in'")
        iterable = self.parse_expr()
        self.scope.blocks.append({})
        try:
            var = self.declare(name.val)
            counter = self.declare(counter_name.val) if counter_name else None
            body = self.loop_body()
        finally:
            self.scope.blocks.pop()
        return A.For(tok.pos, var, counter, iterable, body)

    def parse_try(self) -> A.Node:
        """``try { } catch [(err)] { }``."""
        start = self.expect("try")
        body = self.parse_block()
        self.expect("catch", "'catch'")
        var = None
        self.scope.blocks.append({})
        try:
            if self.accept("("):
                var = self.declare(self.ident("an error variable").val)
                self.expect(")", "')'")
            catch = self.parse_block()
        finally:
            self.scope.blocks.pop()
        return A.Try(start.pos, body, var, catch)


_BOOL_OPS = frozenset(["&&", "||", "==", "!=", "<", "<=", ">", ">=", "in", "!in"])
_KEYWORD_KEYS = frozenset(["this", "fn", "let", "if", "else", "true", "false", "in", "for"])


def parse(src: str, max_expr_depth: int = 64, max_fn_expr_depth: int = 32) -> A.Script:
    """Parse a script; raises `RhaiParseError` with Rhai's kind and the position."""
    return Parser(src, max_expr_depth, max_fn_expr_depth).parse_script()
