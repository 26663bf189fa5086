"""Highlighting spans for the editor: never raises, marks actions, keys, values, comments."""

from __future__ import annotations

from core.heroscript.highlight import SpanKind, highlight_spans


def _kinds(text: str) -> list[tuple[int, str, SpanKind]]:
    lines = text.splitlines()
    return [(s.line, lines[s.line - 1][s.start : s.end], s.kind) for s in highlight_spans(text)]


def test_spans_of_a_small_script() -> None:
    text = "// note\n!!a.b x:1 arg // c\n    y:'two'\n    t:'\n      body\n    '\nprose\n"
    assert _kinds(text) == [
        (1, "// note", SpanKind.COMMENT),
        (2, "!!a.b", SpanKind.ACTION),
        (2, "x", SpanKind.KEY),
        (2, "1", SpanKind.VALUE),
        (2, "arg", SpanKind.ARG),
        (2, "// c", SpanKind.COMMENT),
        (3, "y", SpanKind.KEY),
        (3, "'two'", SpanKind.VALUE),
        (4, "t", SpanKind.KEY),
        (4, "'", SpanKind.VALUE),
        (5, "body", SpanKind.VALUE),
        (6, "'", SpanKind.VALUE),
    ]


def test_invalid_text_never_raises() -> None:
    for text in ["!!a.b.c x-y:'", "!!!!!", "  a:'\n", '!!a.b\n    k:"unterminated\n', ""]:
        highlight_spans(text)
