"""RhaiTools: what editors ask of a Rhai script (problems with their place, spans to colour)."""

from __future__ import annotations

from core.heroscript.errors import Diagnostic
from core.heroscript.highlight import Span, SpanKind
from core.heroscript.limits import MAX_SCRIPT_BYTES, script_size
from core.rhai.errors import RhaiError
from core.rhai.lexer import KEYWORDS, Tok, tokenize
from core.rhai.parser import parse

_VALUES = frozenset({"str", "istr", "char", "int", "float", "true", "false"})
_QUOTES = "\"'`"


class RhaiTools:
    """Parse-only services for Rhai text; nothing runs."""

    @staticmethod
    def validate(text: str) -> list[Diagnostic]:
        """The first problem of a script (Rhai stops at its first parse error), or none."""
        size = script_size(text)
        if size > MAX_SCRIPT_BYTES:
            message = f"the script is {size:,} bytes; the limit is {MAX_SCRIPT_BYTES:,} bytes"
            return [Diagnostic(1, 1, message)]
        try:
            parse(text)
        except RhaiError as exc:
            return [Diagnostic(exc.line or 1, exc.col or 1, f"{exc.kind}: {exc.message}")]
        except RecursionError:
            return [Diagnostic(1, 1, "the script nests too deeply to parse")]
        return []

    @staticmethod
    def highlight(text: str) -> list[Span]:
        """Keywords, calls, names and literals, from the interpreter's own lexer.

        Text that does not lex (an open string) is coloured up to where it stops.
        """
        if script_size(text) > MAX_SCRIPT_BYTES:
            return []
        try:
            tokens = tokenize(text)
        except (RhaiError, RecursionError):
            return []
        lines = text.split("\n")
        spans = _comment_spans(lines)
        for at, tok in enumerate(tokens[:-1]):
            kind = _kind(tok, tokens[at + 1])
            if kind is None or not 0 < tok.line <= len(lines):
                continue
            line = lines[tok.line - 1]
            start = tok.col - 1
            follower = tokens[at + 1]
            stop = follower.col - 1 if follower.line == tok.line else len(line)
            end = _token_end(tok, line, start, stop)
            if end > start:
                spans.append(Span(tok.line, start, end, kind))
        return sorted(spans, key=lambda s: (s.line, s.start))


def _kind(tok: Tok, after: Tok) -> SpanKind | None:
    if tok.kind in _VALUES:
        return SpanKind.VALUE
    if tok.kind in KEYWORDS:
        return SpanKind.ACTION
    if tok.kind == "id":
        return SpanKind.KEY if after.kind in ("(", "::") else SpanKind.ARG
    return None


def _token_end(tok: Tok, line: str, start: int, stop: int) -> int:
    """Where a token ends on its line: names by their length, literals by their text."""
    if tok.kind == "id" or tok.kind in KEYWORDS:
        return start + len(str(tok.val))
    segment = line[start:stop]
    if segment[:1] in _QUOTES:
        closing = segment.rfind(segment[0])
        return start + (closing + 1 if closing > 0 else len(segment.rstrip()))
    for marker in ("//", "/*"):
        cut = segment.find(marker)
        if cut >= 0:
            segment = segment[:cut]
    return start + len(segment.rstrip())


def _comment_spans(lines: list[str]) -> list[Span]:
    """Whole-line `//` comments (the common case); comments after code stay plain."""
    found = []
    for number, line in enumerate(lines, 1):
        stripped = line.lstrip()
        if stripped.startswith("//"):
            found.append(Span(number, len(line) - len(stripped), len(line), SpanKind.COMMENT))
    return found
