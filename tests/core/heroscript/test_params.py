"""Typed getters (spec §5) and name_fix (spec §6)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.heroscript import parser
from core.heroscript.names import name_fix
from core.heroscript.params import ParamError, Params


def _params(text: str) -> Params:
    return parser.parse(f"!!a.b {text}")[0].params


@pytest.mark.parametrize(
    ("raw", "fixed"),
    [
        ("Hello World", "hello_world"),
        ("My-Actor", "my_actor"),
        ("$sds__ 4F", "sds_4f"),
        ("a--b", "a__b"),
        ("a_-b", "a_b"),
        ("file.Tar.GZ", "file_tar.gz"),
        ("x#comment", "x"),
    ],
)
def test_name_fix(raw: str, fixed: str) -> None:
    assert name_fix(raw) == fixed


def test_get_and_defaults() -> None:
    p = _params("name:' x ' Color:red")
    assert p.get("name") == "x"
    assert p.get("color") == "red"
    assert p.get_default("missing", "d") == "d"
    with pytest.raises(ParamError, match="Did not find key:missing"):
        p.get("missing")
    assert p.exists("color")


def test_get_int() -> None:
    p = _params("a:42 b:-3 c:1_000 d:2147483648 e:4.5 f:1__0")
    assert (p.get_int("a"), p.get_int("b"), p.get_int("c")) == (42, -3, 1000)
    for key in "def":
        with pytest.raises(ParamError, match="signed 32-bit integer"):
            p.get_int(key)
    assert p.get_int_default("zz", 7) == 7


def test_get_float_and_percent() -> None:
    p = _params("a:0.5 b:10% c:150% d:abc e:100")
    assert p.get_float("a") == 0.5
    assert p.get_float("b") == pytest.approx(0.1)
    assert p.get_percentage("b") == pytest.approx(0.1)
    assert p.get_percentage("e") == 1.0
    with pytest.raises(ParamError, match="between 0 and 100"):
        p.get_percentage("c")
    with pytest.raises(ParamError, match="64-bit float"):
        p.get_float("d")


def test_bools_follow_v() -> None:
    p = _params("a:yes b:0 c:on d:'' e:Y")
    assert [p.get_default_true(k) for k in "abcdez"] == [True, False, False, True, True, True]
    assert [p.get_default_false(k) for k in "abcdez"] == [True, False, True, False, True, False]
    assert p.get_bool("c") is True
    with pytest.raises(ParamError):
        _params("x:maybe").get_bool("x")


def test_lists() -> None:
    p = _params("a: 'Apple', 'Dragon Fruit', Kiwi b:'[1, 2 ,3]' c:1,x")
    assert p.get_list("a") == ["Apple", "Dragon Fruit", "Kiwi"]
    assert p.get_list("b") == ["1", "2", "3"]
    with pytest.raises(ParamError, match="entry 'x'"):
        p.get_list_int("c")
    assert _params("n: 1, 2, 3").get_list_int("n") == [1, 2, 3]
    assert _params("n: 1.5, 2").get_list_float("n") == [1.5, 2.0]
    assert _params("n: 'My Name', x").get_list_namefix("n") == ["my_name", "x"]


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("90", 90),
        ("1.5", 1.5),
        ("500ms", 0.5),
        ("10s", 10),
        ("5m", 300),
        ("1h30m", 5400),
        ("2d", 172800),
        ("1w", 604800),
    ],
)
def test_duration(raw: str, seconds: float) -> None:
    assert _params(f"t:{raw}").get_duration("t") == timedelta(seconds=seconds)


def test_bad_duration() -> None:
    with pytest.raises(ParamError, match="duration"):
        _params("t:soon").get_duration("t")


def test_args() -> None:
    p = parser.parse("!!a.b one Two x:1")[0].params
    assert p.get_arg(0) == "one"
    assert p.get_arg_default(5, "z") == "z"
    assert p.exists_arg("two")
    assert p.len_arg() == 2
    with pytest.raises(ParamError, match="not enough args"):
        p.get_arg(2)
