"""Errors point at the character the user wrote: line, column and a caret."""

from __future__ import annotations

import pytest

from core.heroscript import parser
from core.heroscript.errors import HeroScriptError, caret_view


def _error(script: str) -> HeroScriptError:
    with pytest.raises(HeroScriptError) as info:
        parser.parse(script)
    return info.value


def test_illegal_key_char_in_block_has_line_col_and_caret() -> None:
    err = _error("!!vm.define\n    name:x\n    a-b:1\n")
    assert (err.line, err.col) == (3, 6)
    assert err.message.startswith("key 'a-b' has a character not allowed in keys")
    assert str(err) == (
        "line 3, col 6: key 'a-b' has a character not allowed in keys (A-Z a-z 0-9 _ , . /)\n"
        "    a-b:1\n"
        "     ^"
    )


def test_illegal_key_char_on_action_line() -> None:
    err = _error("\n!!a.b x:1 my-key:2")
    assert (err.line, err.col) == (2, 13)


def test_position_after_inline_and_multiline_value() -> None:
    script = "!!a.b x:1\n    text:'\n        hello\n    '\n    ok:1 b@d:2\n"
    err = _error(script)
    assert (err.line, err.col) == (5, 11)


def test_tabs_count_as_one_column() -> None:
    err = _error("!!a.b\n\tx:1 a$b:2\n")
    assert (err.line, err.col) == (2, 7)
    assert caret_view("\tx:1 a$b:2", 7).splitlines()[1] == "\t     ^"


def test_indented_script_keeps_real_columns() -> None:
    err = _error("    !!a.b\n      q%:1\n")
    assert (err.line, err.col) == (2, 8)


def test_five_bangs_points_at_fifth() -> None:
    err = _error("ok\n  !!!!!vm.start\n")
    assert (err.line, err.col) == (2, 7)
    assert "there is no action starting with 5 x !" in err.message


def test_three_part_name() -> None:
    err = _error("!!a.b.c x:1")
    assert (err.line, err.col) == (1, 3)
    assert "1 or 2 parts" in err.message


def test_crlf_positions() -> None:
    err = _error("!!a.b x:1\r\n    y:'2'\r\n    z z-:3\r\n")
    assert (err.line, err.col) == (3, 8)


def test_parse_all_lists_every_error_and_keeps_good_actions() -> None:
    script = "!!a.one x-y:1\n!!a.two ok:1\n!!a.b.c\n!!a.three\n    k#:2\n"
    playbook, errors = parser.parse_all(script)
    assert [(e.line, e.col) for e in errors] == [(1, 10), (3, 3), (5, 6)]
    assert [a.name for a in playbook] == ["two"]


def test_nested_yaml_gets_a_clear_message() -> None:
    err = _error("!!a.b\n    specs:\n        size: 'big'\n")
    assert "nested parameters are not supported" in err.message
    assert (err.line, err.col) == (3, 15)


def test_parse_errors_returns_diagnostics() -> None:
    diags = parser.parse_errors("!!a.b x:1\n!!c.d e-f:2\n")
    assert [(d.line, d.col) for d in diags] == [(2, 8)]
    assert str(diags[0]).startswith("line 2, col 8: key 'e-f'")
    assert parser.parse_errors("!!a.b x:1") == []


def test_key_positions_are_recorded() -> None:
    action = parser.parse("!!a.b x:1\n    other: 'v'\n")[0]
    assert action.key_position("x") == (1, 7)
    assert action.key_position("other") == (2, 5)
    assert action.key_position("missing") == (1, 1)
