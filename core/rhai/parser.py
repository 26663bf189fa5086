"""Rhai parser: tokens to a syntax tree, resolving each variable to its declaration.

`ParserBase` (tokens, scopes) and `ExprParser` (expressions) are in their own modules;
this one parses statements, functions, blocks and control flow.
"""

from __future__ import annotations

from typing import Any

from core.rhai import ast as A
from core.rhai.errors import parse_error
from core.rhai.parse_base import _NEEDS_NO_SEMI, ASSIGN_OPS, _FnScope
from core.rhai.parse_expr import ExprParser


class Parser(ExprParser):
    """Parses one script; ``max_expr_depth`` bounds nesting (0: no limit)."""

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


def parse(src: str, max_expr_depth: int = 64, max_fn_expr_depth: int = 32) -> A.Script:
    """Parse a script; raises `RhaiParseError` with Rhai's kind and the position."""
    return Parser(src, max_expr_depth, max_fn_expr_depth).parse_script()
