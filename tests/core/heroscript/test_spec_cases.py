"""Every case of heroscript_cases.json: V's result, or our documented deviation."""

from __future__ import annotations

from typing import Any

import pytest

from core.heroscript import parser
from core.heroscript.errors import HeroScriptError
from tests.core.heroscript.conftest import load_cases

CASES = load_cases()
# The quirk cases where this port deliberately differs from V (see parser's module docs).
DEVIATIONS = {
    "multiline_value_with_blank_lines",
    "multiline_quotes_inside",
    "double_quote_inside_single_is_error",
    "list_first_item_with_space",
    "unquoted_url_is_cut_at_double_slash",
    "space_before_colon",
    "multiline_opened_after_other_param_is_error",
    "multiline_opening_with_4_spaces_is_folded",
    "list_quoted_item_before_other_param",
}


def _outcome(script: str) -> Any:
    try:
        return parser.parse(script).to_list()
    except HeroScriptError as exc:
        return {"error": str(exc)}


def test_every_deviation_is_a_flagged_quirk() -> None:
    quirks = {c["name"] for c in CASES if c.get("v_quirk")}
    assert quirks >= DEVIATIONS
    assert len(CASES) == 56


@pytest.mark.parametrize(
    "case", [c for c in CASES if c["name"] not in DEVIATIONS], ids=lambda c: c["name"]
)
def test_case_matches_v(case: dict[str, Any]) -> None:
    got = _outcome(case["script"])
    expected = case["expected"]
    if isinstance(expected, dict):
        assert "error" in got, got
        # The message is ours; the position must be real.
        with pytest.raises(HeroScriptError) as info:
            parser.parse(case["script"])
        assert info.value.line >= 1
        assert info.value.col >= 1
    else:
        assert got == expected


def test_case_names_are_unique() -> None:
    assert len({c["name"] for c in CASES}) == len(CASES)
