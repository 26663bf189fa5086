"""Rhai tokenizer: one linear pass over the text, no regular expressions over unbounded input."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from core.rhai.errors import RhaiParseError, parse_error


class Tok:
    """One token: ``kind`` is a keyword, a symbol or one of int/float/str/istr/char/id/eof."""

    __slots__ = ("col", "kind", "line", "val")

    def __init__(self, kind: str, val: Any, line: int, col: int) -> None:
        self.kind = kind
        self.val = val
        self.line = line
        self.col = col

    @property
    def pos(self) -> tuple[int, int]:
        """(line, col)."""
        return (self.line, self.col)

    def __repr__(self) -> str:
        return f"Tok({self.kind!r}, {self.val!r}, {self.line}:{self.col})"


KEYWORDS = frozenset(
    [
        "let",
        "const",
        "if",
        "else",
        "switch",
        "do",
        "while",
        "until",
        "loop",
        "for",
        "in",
        "break",
        "continue",
        "return",
        "throw",
        "try",
        "catch",
        "fn",
        "private",
        "import",
        "export",
        "as",
        "global",
        "this",
        "true",
        "false",
    ]
)
RESERVED = frozenset(
    [
        "var",
        "static",
        "shared",
        "goto",
        "exit",
        "match",
        "case",
        "public",
        "protected",
        "new",
        "use",
        "with",
        "module",
        "package",
        "super",
        "spawn",
        "thread",
        "go",
        "sync",
        "async",
        "await",
        "yield",
        "default",
        "void",
        "null",
        "nil",
    ]
)
SYMBOLS3 = frozenset(["..=", "**=", "<<=", ">>=", "!in"])
SYMBOLS2 = frozenset(
    [
        "==",
        "!=",
        "<=",
        ">=",
        "&&",
        "||",
        "+=",
        "-=",
        "*=",
        "/=",
        "%=",
        "&=",
        "|=",
        "^=",
        "<<",
        ">>",
        "**",
        "..",
        "=>",
        "::",
        "??",
        "?.",
        "?[",
        "#{",
        "->",
    ]
)
SYMBOLS1 = frozenset("+-*/%=<>!&|^()[]{},;:.?@")
_IDENT_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_IDENT = _IDENT_START | frozenset("0123456789")
_DIGITS = frozenset("0123456789")
# Characters that may start whitespace or a comment (anything else starts a token).
_SPACE_START = frozenset(" \t\r\n\f\v\ufeff/\u00a0\u2028\u2029\u3000")
_HEX = frozenset("0123456789abcdefABCDEF")
_RADIX = {"x": (16, _HEX), "o": (8, frozenset("01234567")), "b": (2, frozenset("01"))}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'"}
_ESCAPE_LEN = {"x": 2, "u": 4, "U": 8}
MAX_INTERPOLATION_DEPTH = 32


class Lexer:
    """Turns a script into a list of `Tok`, ending with an ``eof`` token."""

    def __init__(self, src: str) -> None:
        self.src = src
        self.i = 0
        self.line = 1
        self.line_start = 0  # index of the first character of the current line
        self.nesting = 0  # of ${...} inside back-tick strings

    def col(self, i: int | None = None) -> int:
        """1-based column of index ``i`` (default: the current index)."""
        return (self.i if i is None else i) - self.line_start + 1

    def error(self, kind: str, message: str, line: int, col: int) -> RhaiParseError:
        """A parse error at (line, col)."""
        return parse_error(kind, message, (line, col))

    def tokenize(self, in_interp: bool = False) -> list[Tok]:
        """Tokenize until the end, or (inside ``${``) until the matching ``}``."""
        return list(self.iter_tokens(in_interp))

    def iter_tokens(self, in_interp: bool = False) -> Iterator[Tok]:
        """Tokens one at a time, so a parser that fails early stops the lexing too."""
        src, n = self.src, len(self.src)
        depth = 0
        if not in_interp and src.startswith("#!"):
            while self.i < n and src[self.i] != "\n":
                self.i += 1
        while True:
            i = self.i
            if i < n and src[i] in _SPACE_START:
                self.skip_space()
                i = self.i
            if i >= n:
                if in_interp:
                    raise self.error(
                        "UnterminatedString", "Open string is not terminated", self.line, self.col()
                    )
                yield Tok("eof", None, self.line, self.col())
                return
            c = src[i]
            line, col = self.line, i - self.line_start + 1
            if c in _IDENT_START:
                j = i + 1
                while j < n and src[j] in _IDENT:
                    j += 1
                word = src[i:j]
                self.i = j
                if word in KEYWORDS:
                    yield Tok(word, word, line, col)
                elif word in RESERVED:
                    raise self.error("Reserved", f"'{word}' is a reserved keyword", line, col)
                else:
                    yield Tok("id", word, line, col)
            elif c in SYMBOLS1 or c == "#":
                if c == "#" and i + 1 < n and src[i + 1] in '#"':
                    yield Tok("str", self.raw_string(line, col), line, col)
                    continue
                sym = src[i : i + 3]
                if sym in SYMBOLS3 and not (sym == "!in" and src[i + 3 : i + 4] in _IDENT):
                    self.i = i + 3
                elif sym[:2] in SYMBOLS2:
                    sym = sym[:2]
                    self.i = i + 2
                elif c != "#":
                    sym = c
                    self.i = i + 1
                else:
                    raise self.error("BadInput", f"Unexpected character '{c}'", line, col)
                if in_interp:
                    if sym in ("{", "#{"):
                        depth += 1
                    elif sym == "}":
                        if depth == 0:
                            yield Tok("eof", None, line, col)
                            return
                        depth -= 1
                yield Tok(sym, sym, line, col)
            elif c in _DIGITS:
                yield self.number(line, col)
            elif c == '"':
                self.i = i + 1
                yield Tok("str", self.string('"', col), line, col)
            elif c == "`":
                self.i = i + 1
                yield self.backtick(line, col)
            elif c == "'":
                self.i = i + 1
                text = self.string("'", col)
                if len(text) != 1:
                    raise self.error(
                        "MalformedChar", f"Invalid character literal: '{text}'", line, col
                    )
                yield Tok("char", text, line, col)
            else:
                raise self.error("BadInput", f"Unexpected character '{c}'", line, col)

    def newline(self, i: int) -> None:
        """Record that index ``i`` is a newline."""
        self.line += 1
        self.line_start = i + 1

    def skip_space(self) -> None:
        """Skip whitespace and comments (block comments nest)."""
        src, n = self.src, len(self.src)
        i = self.i
        while i < n:
            c = src[i]
            if c == "\n":
                self.newline(i)
                i += 1
            elif c in " \t\r\f\v\ufeff":
                i += 1
            elif c == "/" and i + 1 < n and src[i + 1] == "/":
                while i < n and src[i] != "\n":
                    i += 1
            elif c == "/" and i + 1 < n and src[i + 1] == "*":
                line, col = self.line, i - self.line_start + 1
                level = 1
                i += 2
                while level:
                    if i >= n:
                        self.i = i
                        raise self.error(
                            "UnterminatedComment", "Comment is not terminated", line, col
                        )
                    c = src[i]
                    if c == "\n":
                        self.newline(i)
                    elif c == "*" and i + 1 < n and src[i + 1] == "/":
                        level -= 1
                        i += 1
                    elif c == "/" and i + 1 < n and src[i + 1] == "*":
                        level += 1
                        i += 1
                    i += 1
            elif c.isspace():
                i += 1
            else:
                break
        self.i = i

    def number(self, line: int, col: int) -> Tok:
        """An integer (decimal, 0x, 0o, 0b; `_` separators) or a float literal."""
        src, n = self.src, len(self.src)
        i = self.i
        if src[i] == "0" and i + 1 < n and src[i + 1] in "xXoObB":
            base, digits = _RADIX[src[i + 1].lower()]
            j = i + 2
            while j < n and (src[j] in digits or src[j] == "_"):
                j += 1
            text = src[i + 2 : j].replace("_", "")
            if not text or (j < n and (src[j] in _IDENT or src[j] == ".")):
                raise self.error("MalformedNumber", f"Invalid number: {src[i : j + 1]}", line, col)
            self.i = j
            value = int(text, base)
            if value >= 1 << 64:
                raise self.error("MalformedNumber", f"Invalid number: {src[i:j]}", line, col)
            if value >= 1 << 63:
                value -= 1 << 64
            return Tok("int", value, line, col)
        j = i
        while j < n and (src[j] in _DIGITS or src[j] == "_"):
            j += 1
        is_float = False
        if j + 1 < n and src[j] == "." and src[j + 1] in _DIGITS:
            is_float = True
            j += 1
            while j < n and (src[j] in _DIGITS or src[j] == "_"):
                j += 1
        if j < n and src[j] in "eE":
            k = j + 1
            if k < n and src[k] in "+-":
                k += 1
            if k < n and src[k] in _DIGITS:
                is_float = True
                j = k
                while j < n and src[j] in _DIGITS:
                    j += 1
        text = src[i:j].replace("_", "")
        self.i = j
        if j < n and src[j] in _IDENT:
            raise self.error("MalformedNumber", f"Invalid number: {src[i : j + 1]}", line, col)
        if is_float:
            return Tok("float", float(text), line, col)
        return Tok("int", int(text), line, col)

    def escape(self, line: int, col: int) -> str:
        """Read one escape after a backslash (the index is on the escape letter)."""
        src = self.src
        c = src[self.i] if self.i < len(src) else ""
        if c in _ESCAPES:
            self.i += 1
            return _ESCAPES[c]
        if c in _ESCAPE_LEN:
            width = _ESCAPE_LEN[c]
            digits = src[self.i + 1 : self.i + 1 + width]
            if len(digits) != width or any(d not in _HEX for d in digits):
                raise self.error(
                    "MalformedEscapeSequence", f"Invalid escape sequence: \\{c}{digits}", line, col
                )
            self.i += 1 + width
            code = int(digits, 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise self.error(
                    "MalformedEscapeSequence", f"Invalid escape sequence: \\{c}{digits}", line, col
                )
            return chr(code)
        raise self.error(
            "MalformedEscapeSequence", f"Invalid escape sequence: \\{c}", line, self.col()
        )

    def string(self, quote: str, start_col: int) -> str:
        """The rest of a "..." or '...' literal (the index is past the opening quote)."""
        src, n = self.src, len(self.src)
        parts: list[str] = []
        line = self.line
        skip_until = 0  # after a line continuation: skip indentation up to the quote's column
        while True:
            i = self.i
            j = i
            while j < n and src[j] not in "\\\n" and src[j] != quote:
                j += 1
            if skip_until:
                k = i
                while k < j and src[k].isspace() and (k - self.line_start + 1) < skip_until:
                    k += 1
                i = k
                if i < j:
                    skip_until = 0
            parts.append(src[i:j])
            self.i = j
            if j >= n:
                raise self.error(
                    "UnterminatedString", "Open string is not terminated", line, start_col
                )
            c = src[j]
            if c == quote:
                if quote == '"' and j + 1 < n and src[j + 1] == '"':  # "" is an escaped quote
                    parts.append('"')
                    self.i = j + 2
                    skip_until = 0
                    continue
                self.i = j + 1
                return "".join(parts)
            if c == "\n":
                raise self.error(
                    "UnterminatedString", "Open string is not terminated", line, start_col
                )
            # a backslash
            if j + 1 < n and src[j + 1] == "\n" and quote == '"':
                self.newline(j + 1)
                self.i = j + 2
                skip_until = start_col + 1
                continue
            self.i = j + 1
            parts.append(self.escape(self.line, self.col(j)))
            skip_until = 0

    def raw_string(self, line: int, col: int) -> str:
        """``#"..."#``, ``##"..."##``: verbatim up to the quote and the same number of #."""
        src, n = self.src, len(self.src)
        i = self.i
        hashes = 0
        while i < n and src[i] == "#":
            hashes += 1
            i += 1
        if i >= n or src[i] != '"':
            raise self.error("BadInput", "Invalid raw string", line, col)
        close = '"' + "#" * hashes
        end = src.find(close, i + 1)
        if end < 0:
            raise self.error("UnterminatedString", "Open string is not terminated", line, col)
        text = src[i + 1 : end]
        for k in range(i + 1, end):
            if src[k] == "\n":
                self.newline(k)
        self.i = end + len(close)
        return text

    def backtick(self, line: int, col: int) -> Tok:
        """A back-tick string: verbatim, multi-line, with ``${expr}`` interpolation."""
        src, n = self.src, len(self.src)
        parts: list[Any] = []
        buf: list[str] = []
        if self.i < n and src[self.i] == "\n":
            self.newline(self.i)
            self.i += 1
        elif src.startswith("\r\n", self.i):
            self.newline(self.i + 1)
            self.i += 2
        while True:
            i = self.i
            j = i
            while j < n and src[j] not in "`$\n\\":
                j += 1
            buf.append(src[i:j])
            if j >= n:
                raise self.error("UnterminatedString", "Open string is not terminated", line, col)
            c = src[j]
            if c == "\\":
                if src.startswith("${", j + 1):  # \${ is a literal ${
                    buf.append("${")
                    self.i = j + 3
                else:
                    buf.append("\\")
                    self.i = j + 1
            elif c == "\n":
                self.newline(j)
                buf.append("\n")
                self.i = j + 1
            elif c == "$":
                if j + 1 < n and src[j + 1] == "{":
                    if buf:
                        parts.append("".join(buf))
                        buf = []
                    self.i = j + 2
                    self.nesting += 1
                    if self.nesting > MAX_INTERPOLATION_DEPTH:
                        raise self.error(
                            "ExprTooDeep", "Interpolation nests too deeply", self.line, self.col(j)
                        )
                    parts.append(self.tokenize(in_interp=True))
                    self.nesting -= 1
                else:
                    buf.append("$")
                    self.i = j + 1
            elif j + 1 < n and src[j + 1] == "`":  # `` is an escaped back-tick
                buf.append("`")
                self.i = j + 2
            else:
                self.i = j + 1
                break
        if buf:
            parts.append("".join(buf))
        if all(isinstance(p, str) for p in parts):
            return Tok("str", "".join(parts), line, col)
        return Tok("istr", parts, line, col)


def tokenize(src: str) -> list[Tok]:
    """Tokenize a whole script."""
    return Lexer(src).tokenize()
