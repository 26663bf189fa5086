"""Errors with Rhai's kinds, line and column (parse and runtime); linear time on hostile input."""

from __future__ import annotations

import contextlib
import time

import pytest

from core.rhai import Engine, RhaiError, RhaiParseError, RhaiRuntimeError, eval
from core.rhai.lexer import tokenize


def parse_error(script: str) -> RhaiParseError:
    with pytest.raises(RhaiParseError) as info:
        Engine().compile(script)
    return info.value


def runtime_error(script: str) -> RhaiRuntimeError:
    with pytest.raises(RhaiRuntimeError) as info:
        eval(script)
    return info.value


@pytest.mark.parametrize(
    ("script", "error", "kind", "pos"),
    [
        ("let x = 1;\nlet = 2;", RhaiParseError, "MissingToken", (2, 5)),
        ('let s = "abc\nlet t = 1;', RhaiParseError, "UnterminatedString", (1, 9)),
        ("let x = 0;\n  break;", RhaiParseError, "LoopBreak", (2, 3)),
        ("fn f(a, a) { a }", RhaiParseError, "FnDuplicatedParam", (1, 9)),
        ("[1, 2][1.5]", RhaiParseError, "MalformedIndexExpr", (1, 8)),
        ("x.foo() = 1;", RhaiParseError, "AssignmentToInvalidLHS", (1, 3)),
        ("const c = 1; c = 2;", RhaiParseError, "AssignmentToConstant", (1, 14)),
        ("/* open", RhaiParseError, "UnterminatedComment", (1, 1)),
        ("let x = 0b102;", RhaiParseError, "MalformedNumber", (1, 9)),
        ("{ fn inner() {} }", RhaiParseError, "WrongFnDefinition", (1, 3)),
        ("switch 1 { _ => 1, 2 => 3 }", RhaiParseError, "WrongSwitchDefaultCase", (1, 20)),
        ("let var = 1;", RhaiParseError, "Reserved", (1, 5)),
        ("'ab'", RhaiParseError, "MalformedChar", (1, 1)),
        # These compile, and fail where they run.
        ("let x = 1;\nlet y = x / 0;", RhaiRuntimeError, "ErrorArithmetic", (2, 11)),
        ("let a = [1, 2];\na[5]", RhaiRuntimeError, "ErrorArrayBounds", (2, 2)),
        ("nope(1)", RhaiRuntimeError, "ErrorFunctionNotFound", (1, 1)),
        ("let x = 1;\n  y + x", RhaiRuntimeError, "ErrorVariableNotFound", (2, 3)),
        (
            "const a = [1]; a.push(2);",
            RhaiRuntimeError,
            "ErrorNonPureMethodCallOnConstant",
            (1, 18),
        ),
        ("if 1 { 2 }", RhaiRuntimeError, "ErrorMismatchDataType", (1, 4)),
        ("throw #{code: 7};", RhaiRuntimeError, "ErrorRuntime", (1, 1)),
    ],
)
def test_errors_have_kind_and_position(
    script: str, error: type[RhaiError], kind: str, pos: tuple[int, int]
) -> None:
    err: RhaiError = parse_error(script) if error is RhaiParseError else runtime_error(script)
    assert err.kind == kind
    assert err.pos == pos
    assert f"line {pos[0]}, position {pos[1]}" in str(err)


def test_nesting_past_the_limit_is_expr_too_deep() -> None:
    assert parse_error("(" * 100 + "1" + ")" * 100).kind == "ExprTooDeep"
    assert eval("(" * 20 + "1" + ")" * 20) == 1


def test_columns_count_from_one_after_comments_and_strings() -> None:
    toks = tokenize("/* a\n b */ let s = `x\ny` + 1;")
    assert [(t.kind, t.line, t.col) for t in toks[:3]] == [
        ("let", 2, 7),
        ("id", 2, 11),
        ("=", 2, 13),
    ]
    assert (toks[4].kind, toks[4].line, toks[4].col) == ("+", 3, 4)


@pytest.mark.parametrize(
    "hostile",
    ['"' * 1_000_000, "'" * 1_000_000, "`" * 1_000_000, "/*" * 500_000, "(" * 1_000_000,
     "#" * 1_000_000, '#"' * 500_000, "${" * 500_000, "`${" * 300_000],
    ids=["dquotes", "squotes", "backticks", "comments", "parens", "hashes", "raw", "dollars",
         "interpolations"],
)  # fmt: skip
def test_hostile_megabyte_inputs_finish_fast(hostile: str) -> None:
    started = time.perf_counter()
    with contextlib.suppress(RhaiParseError):
        Engine().compile(hostile)
    assert time.perf_counter() - started < 5
