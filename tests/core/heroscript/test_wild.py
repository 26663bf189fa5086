"""The 151 texts the Hero ecosystem wrote: accepted ones parse exactly; rejected ones error."""

from __future__ import annotations

from typing import Any

import pytest

from core.heroscript import parser
from tests.core.heroscript.conftest import load_wild

WILD = load_wild()
# V rejects these; this port accepts them because `'` and `"` are separate delimiters.
ACCEPTED = {"rw062", "rw095", "rw127"}
# V rejects these and so does this port, with these (line, col) of the first error.
REJECTED = {
    "rw012": (41, 28),  # `#left or right` after a value: `#` is not a comment
    "rw073": (10, 54),  # `name: "x", destination: "y"`: the comma makes a list
    "rw253": (2, 3),  # `!!define.person.car`: three-part action name
    "rw254": (2, 3),
    "rw268": (2, 3),
    "rw275": (11, 21),  # YAML-like nesting under `specs:`
}


def _sequence(script: str) -> list[dict[str, Any]]:
    return [
        {"kind": len(a.kind.bangs), "actor": a.actor, "name": a.name} for a in parser.parse(script)
    ]


def test_corpus_size_and_decisions_cover_every_error_text() -> None:
    assert len(WILD) == 151
    assert {w["id"] for w in WILD if w["expect_error"]} == ACCEPTED | set(REJECTED)


@pytest.mark.parametrize("text", [w for w in WILD if not w["expect_error"]], ids=lambda w: w["id"])
def test_accepted_text_parses_to_listed_actions(text: dict[str, Any]) -> None:
    assert _sequence(text["script"]) == text["actions"]


@pytest.mark.parametrize("ident", sorted(ACCEPTED))
def test_v_error_texts_we_accept(ident: str) -> None:
    text = next(w for w in WILD if w["id"] == ident)
    assert _sequence(text["script"]) == text["actions"]


def test_mixed_quotes_keep_their_inner_quote() -> None:
    text = next(w for w in WILD if w["id"] == "rw127")
    exec_action = parser.parse(text["script"])[3]
    assert exec_action.params.get("cmd") == 'echo "Hello from HeroPods!"'


@pytest.mark.parametrize("ident", sorted(REJECTED))
def test_v_error_texts_we_reject_with_position(ident: str) -> None:
    text = next(w for w in WILD if w["id"] == ident)
    _, errors = parser.parse_all(text["script"])
    assert errors, ident
    first = errors[0]
    assert (first.line, first.col) == REJECTED[ident]
    shown = str(first)
    assert shown.startswith(f"line {first.line}, col {first.col}: ")
    assert shown.splitlines()[-1].endswith("^")


def test_three_part_names_are_all_reported() -> None:
    text = next(w for w in WILD if w["id"] == "rw254")
    _, errors = parser.parse_all(text["script"])
    assert [e.line for e in errors] == [2, 3, 4, 6, 8, 9, 10, 12]
