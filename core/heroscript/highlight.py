"""Spans for syntax highlighting: action names, keys, values, args and comments.

This is a light lexer for display: it follows the splitter's rules for what is
an action and its block, and never raises, even on invalid text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from core.heroscript.parser import split_lines
from core.heroscript.tokenizer import WS, find_comment


class SpanKind(StrEnum):
    """What a span of text is."""

    ACTION = "action"
    KEY = "key"
    VALUE = "value"
    ARG = "arg"
    COMMENT = "comment"


@dataclass(frozen=True)
class Span:
    """A highlighted run: 1-based line, 0-based ``start`` and ``end`` (exclusive) columns."""

    line: int
    start: int
    end: int
    kind: SpanKind


# Possessive quantifiers (`++`, `*+`) never give back what they took. The last two
# branches eat runs that start no token: blanks that lead to no `:` (`finditer` used
# to retry from every blank of such a run, quadratic), and quotes outside a value
# (no token starts at a quote, so skipping the run at once changes nothing).
_TOKEN_RE = re.compile(
    r"""(?P<key>[^\s:'"]++)?\s*+:\s*+"""
    r"""(?P<value>'(?:[^'\\]++|\\.)*+'?|"(?:[^"\\]++|\\.)*+"?|[^\s'"]*+)"""
    r"""|(?P<arg>[^\s:'"]++)"""
    r"""|\s++|['"]++"""
)
_OPEN_RE = re.compile(r""":\s*+('''|\"\"\"|'|")$""")
_CLOSERS = frozenset({"'", '"', "'''", '"""'})


def _params(line: int, text: str, offset: int, spans: list[Span]) -> bool:
    """Add spans for one line of params; return whether it opens a multi-line value."""
    at = find_comment(text)
    body = text if at < 0 else text[:at]
    if at >= 0:
        spans.append(Span(line, offset + at, offset + len(text.rstrip(WS)), SpanKind.COMMENT))
    for match in _TOKEN_RE.finditer(body):
        if match.group("arg"):
            spans.append(Span(line, offset + match.start(), offset + match.end(), SpanKind.ARG))
            continue
        if match.group("key"):
            spans.append(
                Span(line, offset + match.start("key"), offset + match.end("key"), SpanKind.KEY)
            )
        if match.group("value"):
            spans.append(
                Span(
                    line, offset + match.start("value"), offset + match.end("value"), SpanKind.VALUE
                )
            )
    return _OPEN_RE.search(body.rstrip(WS)) is not None


def highlight_spans(text: str) -> list[Span]:
    """Return the spans of ``text`` in order; unknown text gets no span."""
    spans: list[Span] = []
    in_block = in_value = False
    for index, raw in enumerate(split_lines(text)):
        line = index + 1
        stripped = raw.strip(WS)
        lead = len(raw) - len(raw.lstrip(WS))
        if not stripped:
            continue
        if in_block and raw.startswith(("  ", "\t")) and not stripped.startswith("!"):
            if in_value:
                in_value = stripped not in _CLOSERS
                spans.append(Span(line, lead, len(raw.rstrip(WS)), SpanKind.VALUE))
                continue
            if stripped.startswith("//"):
                spans.append(Span(line, lead, len(raw.rstrip(WS)), SpanKind.COMMENT))
                continue
            in_value = _params(line, stripped, lead, spans)
            continue
        in_block = in_value = False
        if stripped.startswith("!") and not stripped.startswith("!["):
            token = stripped.split(" ", 1)[0]
            spans.append(Span(line, lead, lead + len(token), SpanKind.ACTION))
            rest = stripped[len(token) :]
            if rest.strip(WS):
                start = lead + len(token) + len(rest) - len(rest.lstrip(WS))
                in_value = _params(line, rest.strip(WS), start, spans)
            in_block = True
        elif raw.startswith("//"):
            spans.append(Span(line, 0, len(raw.rstrip(WS)), SpanKind.COMMENT))
    return sorted(spans, key=lambda s: (s.line, s.start))
