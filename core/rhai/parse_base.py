"""The parser's base: lazily lexed tokens, nesting depth, and parse-time variable scopes."""

from __future__ import annotations

from collections.abc import Iterator

from core.rhai import ast as A
from core.rhai.errors import Pos, RhaiParseError, parse_error
from core.rhai.lexer import Lexer, Tok

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


class ParserBase:
    """Tokens (lexed on demand), the nesting limit and the scopes of the function parsed."""

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
