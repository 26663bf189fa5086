"""Texts no editor should produce but a request can: NUL characters and lone surrogates."""

from __future__ import annotations

import pytest

from core.heroscript import highlight_spans, parser, validate
from core.heroscript.errors import HeroScriptError
from core.heroscript.formatter import FormatError, format_action, format_text
from core.heroscript.model import Action, ActionKind
from core.heroscript.params import Params


def test_a_typed_nul_is_kept_and_never_taken_for_a_multiline_value() -> None:
    script = "!!a.b\n    x:'\n        body\n    '\n    k:'\x000'\n    e:'\x00'\n"
    action = parser.parse(script)[0]
    assert action.params.values == {"x": "body", "k": "\x000", "e": "\x00"}


def test_text_after_a_multiline_value_is_appended() -> None:
    action = parser.parse("!!a.b\n    k:'\n        body\n    '\n    ,more\n")[0]
    assert action.params.get("k") == "body,more"


SURROGATE_TEXTS = [
    ("!!a.b k:'x\ud800y'\n", 1, 11, "U+D800"),
    ("!!a.b\n\tk:1\n\tq:'\udfff'\n", 3, 5, "U+DFFF"),
    ("// note \udbff\n!!a.b k:1\n", 1, 9, "U+DBFF"),
    ("prose\n\n  \udc00 more prose\n", 3, 3, "U+DC00"),
    ("!!a.\ud800b k:1\n", 1, 5, "U+D800"),
]


@pytest.mark.parametrize(("text", "line", "col", "code"), SURROGATE_TEXTS)
def test_a_lone_surrogate_is_an_error_at_its_line_and_column(
    text: str, line: int, col: int, code: str
) -> None:
    with pytest.raises(HeroScriptError) as info:
        parser.parse(text)
    err = info.value
    assert (err.line, err.col) == (line, col)
    assert code in err.message
    assert "surrogate" in err.message
    # The message and its caret view can be printed and stored as UTF-8.
    str(err).encode()
    assert str(err).splitlines()[-1].endswith("^")
    assert validate(text) == [err.diagnostic()]


@pytest.mark.parametrize(("text", "line", "col", "code"), SURROGATE_TEXTS)
def test_highlighter_and_formatter_do_not_crash_on_a_lone_surrogate(
    text: str, line: int, col: int, code: str
) -> None:
    highlight_spans(text)
    with pytest.raises(HeroScriptError) as info:
        format_text(text)
    assert (info.value.line, info.value.col) == (line, col)
    str(info.value).encode()


def test_the_action_holding_a_surrogate_is_left_out_and_the_rest_is_parsed() -> None:
    text = "!!a.one k:1\n!!a.two\n    k:'\ud800'\n!!a.three k:3 b@d:4\n!!a.four k:4\n"
    playbook, errors = parser.parse_all(text)
    assert [(a.name, a.id) for a in playbook] == [("one", 1), ("four", 2)]
    assert [(e.line, e.col) for e in errors] == [(3, 8), (4, 16)]


def test_an_action_built_with_a_surrogate_cannot_be_formatted() -> None:
    action = Action(0, ActionKind.SAL, "a", "b", Params({"k": "x\ud800"}))
    with pytest.raises(FormatError, match="U\\+D800"):
        format_action(action)


def test_several_surrogates_give_one_error_per_line() -> None:
    errors = parser.parse_errors("\ud800\ud800x\nok\ny\udc00\udc01\n")
    assert [(d.line, d.col) for d in errors] == [(1, 1), (3, 2)]
