"""The size check that runs before any parsing of text from outside."""

from __future__ import annotations

import pytest

from core.heroscript import (
    MAX_SCRIPT_BYTES,
    HeroScriptError,
    ScriptTooLargeError,
    check_size,
    script_size,
    validate,
)


def test_the_default_limit_is_the_job_params_limit() -> None:
    from core.jobs.manager import MAX_PARAMS_BYTES

    assert MAX_SCRIPT_BYTES == MAX_PARAMS_BYTES


@pytest.mark.parametrize(
    ("text", "size"),
    [("", 0), ("abc", 3), ("é", 2), ("☕", 3), ("🐍", 4), ("\ud800", 3), ("a\udfffb", 5)],
)
def test_script_size_counts_utf8_bytes_and_never_raises(text: str, size: int) -> None:
    assert script_size(text) == size


def test_text_at_the_limit_passes() -> None:
    check_size("x" * 100, 100)
    check_size("é" * 50, 100)
    check_size("x" * 10_000, 0)  # 0: no limit


def test_one_byte_over_the_limit_is_refused_at_that_character() -> None:
    with pytest.raises(ScriptTooLargeError) as info:
        check_size("!!a.b\n" + "x" * 95, 100)
    err = info.value
    assert (err.size, err.limit) == (101, 100)
    assert (err.line, err.col) == (2, 95)
    assert err.message == "the script is 101 bytes; the limit is 100 bytes, reached here"
    assert isinstance(err, HeroScriptError)


@pytest.mark.parametrize(
    ("text", "line", "col"),
    [
        ("a\r\nb\rc\n" + "é" * 60, 4, 47),  # 7 bytes, then 93 bytes of é: the 47th is cut
        ("☕" * 40, 1, 34),  # 33 fit in 100 bytes
        ("\ud800" * 40, 1, 34),
        ("x" * 99 + "🐍", 1, 100),
    ],
)
def test_the_position_is_the_first_character_that_does_not_fit(
    text: str, line: int, col: int
) -> None:
    with pytest.raises(ScriptTooLargeError) as info:
        check_size(text, 100)
    assert (info.value.line, info.value.col) == (line, col)
    str(info.value).encode()


def test_a_huge_text_is_refused_without_echoing_it() -> None:
    text = "x" * 5_000_000
    with pytest.raises(ScriptTooLargeError) as info:
        check_size(text)
    assert info.value.size == 5_000_000
    assert len(str(info.value)) < 200


def test_validate_with_a_limit_does_not_parse_a_larger_text() -> None:
    # This text would give a parse error; over the limit only the size is reported.
    text = "!!a.b bad-key:1\n" * 10
    (problem,) = validate(text, limit=100)
    assert (problem.line, problem.col) == (7, 5)
    assert "the limit is 100 bytes" in problem.message
    assert validate(text, limit=1000) == validate(text)
    assert len(validate(text)) == 10
