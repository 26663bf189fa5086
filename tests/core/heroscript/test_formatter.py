"""The formatter writes actions that parse back to the same actions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.heroscript import parser
from core.heroscript.formatter import FormatError, format_action, format_playbook, format_text
from core.heroscript.model import Action, ActionKind, Playbook
from core.heroscript.params import Params

DATA = Path(__file__).resolve().parents[2] / "data"

NAMES = st.from_regex(r"[a-z][a-z0-9]{0,6}(_[a-z0-9]{1,4}){0,2}", fullmatch=True)
KEYS = NAMES.filter(lambda k: k != "id")
# Everything but control characters; tabs and CR become spaces or line ends by design.
CHARS = st.characters(blacklist_categories=("Cc", "Cs"))
WORD_CHARS = st.sampled_from("abcXYZ019_.:/,'\"\\ -!#<>[]%@é☕")


def _writable(value: str) -> bool:
    return (
        value == value.strip(" \t\n\r\v\f")
        and "<BR>" not in value
        and "<<BR>>" not in value
        and "\\\\n" not in value
        and not value.endswith("\\")
    )


SINGLE = st.text(st.one_of(CHARS, WORD_CHARS), max_size=20).filter(_writable)
LINE = SINGLE.filter(lambda x: not x.startswith("!") and x not in ("'", '"', "'''", '"""'))


@st.composite
def multiline(draw: st.DrawFn) -> str:
    lines = draw(st.lists(st.tuples(st.integers(0, 3), LINE), min_size=2, max_size=4))
    out = [(" " * pad + text if text else "") for pad, text in lines]
    out[0] = lines[0][1]
    value = "\n".join(out)
    return value if _writable(value) and value.strip() else "x\ny"


VALUES = st.one_of(SINGLE, SINGLE, multiline())
ARGS = st.lists(
    st.from_regex(r"[a-z0-9_][a-z0-9_.,]{0,6}", fullmatch=True), max_size=3, unique=True
)
COMMENT = st.lists(
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 ,.!?'\"]{0,20}[A-Za-z0-9.!]", fullmatch=True), max_size=2
)


@st.composite
def actions(draw: st.DrawFn) -> Action:
    params = Params(draw(st.dictionaries(KEYS, VALUES, max_size=5)), draw(ARGS))
    return Action(
        id=1,
        kind=draw(st.sampled_from(list(ActionKind))),
        actor=draw(NAMES),
        name=draw(NAMES),
        params=params,
        comments="\n".join(draw(COMMENT)),
    )


def _shape(playbook: Playbook) -> list[tuple[object, ...]]:
    return [
        (a.kind, a.actor, a.name, list(a.params.values.items()), a.params.args, a.comments)
        for a in playbook
    ]


@settings(max_examples=200, deadline=None)
@given(st.lists(actions(), min_size=1, max_size=4))
def test_round_trip(items: list[Action]) -> None:
    playbook = Playbook(items)
    text = format_playbook(playbook)
    assert _shape(parser.parse(text)) == _shape(playbook), text


@settings(max_examples=100, deadline=None)
@given(st.lists(actions(), min_size=1, max_size=3))
def test_format_text_is_idempotent(items: list[Action]) -> None:
    text = format_playbook(Playbook(items))
    once = format_text(text)
    assert format_text(once) == once
    assert _shape(parser.parse(once)) == _shape(parser.parse(text))


def _corpus() -> list[str]:
    wild = json.loads((DATA / "heroscript_wild.json").read_text())
    cases = json.loads((DATA / "heroscript_cases.json").read_text())
    texts = [w["script"] for w in wild if not w["expect_error"]]
    return texts + [c["script"] for c in cases if isinstance(c["expected"], list)]


def test_format_text_keeps_meaning_of_every_corpus_text() -> None:
    for text in _corpus():
        formatted = format_text(text)
        assert parser.parse(formatted).to_list() == parser.parse(text).to_list()
        assert format_text(formatted) == formatted


def test_format_text_keeps_prose_and_remarks() -> None:
    text = "# Title\n\nSome prose.\n\n!!a.b   x:'1'\n\n!!c.d\n    y:2 // keep me\nend\n"
    assert format_text(text) == (
        "# Title\n\nSome prose.\n\n!!a.b x:1\n\n!!c.d\n    y:2 // keep me\nend\n"
    )


def test_long_actions_use_a_block() -> None:
    action = parser.parse("!!vm.define name:'a b' cpu:4 memory:8GB disk:100GB\n")[0]
    assert format_action(action) == (
        "!!vm.define\n    name:'a b'\n    cpu:4\n    memory:8GB\n    disk:100GB"
    )


def test_unwritable_value_is_an_error() -> None:
    action = Action(1, ActionKind.SAL, "a", "b", Params({"x": " padded "}))
    with pytest.raises(FormatError, match=r"a\.b"):
        format_action(action)
