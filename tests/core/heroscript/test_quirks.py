"""The decision on every `v_quirk` case: what V does, and what this port does instead."""

from __future__ import annotations

from typing import Any

import pytest

from core.heroscript import parser
from core.heroscript.errors import HeroScriptError
from tests.core.heroscript.conftest import load_cases

BY_NAME = {c["name"]: c for c in load_cases()}


def _params(name: str) -> dict[str, str]:
    return dict(parser.parse(BY_NAME[name]["script"])[0].params.values)


def _first(name: str) -> dict[str, Any]:
    return parser.parse(BY_NAME[name]["script"]).to_list()[0]


# --- fixed: this port differs from V -------------------------------------------------


def test_blank_lines_inside_multiline_value_are_kept() -> None:
    assert _params("multiline_value_with_blank_lines") == {"text": "para one\n\npara two"}


def test_quotes_inside_multiline_value_are_kept() -> None:
    assert _params("multiline_quotes_inside") == {"text": 'it\'s "quoted"'}


def test_double_quote_inside_single_quotes_is_a_value() -> None:
    assert _params("double_quote_inside_single_is_error") == {"msg": 'say "hi"'}
    assert parser.parse('!!a.b d:"it\'s"')[0].params.values == {"d": "it's"}
    assert parser.parse('!!a.b d:\'it\\\'s\' e:"say \\"x\\""')[0].params.values == {
        "d": "it's",
        "e": 'say "x"',
    }


def test_first_list_item_with_space_is_not_duplicated() -> None:
    assert _params("list_first_item_with_space") == {"fruits": '"Dragon Fruit",Apple'}


def test_quoted_list_item_before_other_param_is_wrapped() -> None:
    assert _params("list_quoted_item_before_other_param") == {
        "fruits": 'Apple,"Dragon Fruit"',
        "x": "1",
    }


def test_unquoted_url_is_kept_whole() -> None:
    assert _params("unquoted_url_is_cut_at_double_slash") == {"url": "https://github.com/x/y"}
    # A remark still starts at `//` after whitespace.
    assert parser.parse("!!a.b url:https://x.y/z // remark")[0].params.values == {
        "url": "https://x.y/z"
    }


def test_remark_with_quote_does_not_swallow_following_params() -> None:
    script = "!!a.b\n    x:1 // it's a remark\n    y:2\n"
    assert parser.parse(script)[0].params.values == {"x": "1", "y": "2"}


def test_space_before_colon_is_a_key() -> None:
    assert _first("space_before_colon")["params"] == {"name": "x"}
    assert _first("space_before_colon")["args"] == []


def test_multiline_value_after_other_param() -> None:
    assert _params("multiline_opened_after_other_param_is_error") == {"x": "1", "d": "line1"}


def test_multiline_opener_with_many_spaces() -> None:
    assert _params("multiline_opening_with_4_spaces_is_folded") == {"d": "x\ny"}


# --- kept: this port does what V does ------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "column0_comment_ends_block",
        "empty_unquoted_value_swallows_next",
        "value_on_next_line_unquoted",
        "unindented_continuation_breaks_multiline",
        "empty_unquoted_value_at_end_is_dropped",
    ],
)
def test_kept_quirk_matches_v(name: str) -> None:
    case = BY_NAME[name]
    assert case.get("v_quirk")
    assert parser.parse(case["script"]).to_list() == case["expected"]


def test_hash_is_not_a_comment() -> None:
    with pytest.raises(HeroScriptError) as info:
        parser.parse("!!a.b\n    x:1  #remark\n")
    assert (info.value.line, info.value.col) == (2, 10)
    assert "'#' is not a comment" in info.value.message
