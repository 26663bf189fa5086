"""Texts no editor should produce but a request can: NUL characters and lone surrogates."""

from __future__ import annotations

from core.heroscript import parser


def test_a_typed_nul_is_kept_and_never_taken_for_a_multiline_value() -> None:
    script = "!!a.b\n    x:'\n        body\n    '\n    k:'\x000'\n    e:'\x00'\n"
    action = parser.parse(script)[0]
    assert action.params.values == {"x": "body", "k": "\x000", "e": "\x00"}


def test_text_after_a_multiline_value_is_appended() -> None:
    action = parser.parse("!!a.b\n    k:'\n        body\n    '\n    ,more\n")[0]
    assert action.params.get("k") == "body,more"
