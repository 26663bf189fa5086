"""Language semantics that the conformance corpus checks only in passing."""

from __future__ import annotations

from typing import Any

import pytest

from core.rhai import eval


@pytest.mark.parametrize(
    ("script", "value"),
    [
        # Values are copied on assignment and into functions; closures share what they capture.
        ("let a = [1]; let b = a; b.push(2); [a.len, b.len]", [1, 2]),
        ("fn f(x) { x.push(0); x.len } let a = [1]; [f(a), a.len]", [2, 1]),
        ("let n = 1; let inc = || n += 1; inc.call(); inc.call(); n", 3),
        # Methods write `this` back to the variable, natives too (strings are values).
        ("fn grow() { this += 1 } let x = 1; x.grow(); x", 2),
        ('let s = "abc"; s.pop(); s.make_upper(); s', "AB"),
        # ?. short-circuits the rest of the chain; ?? takes the right side on ().
        ("let m = #{a: ()}; m.a?.b.c.len()", None),
        ("let m = #{}; m.missing ?? 7", 7),
        # switch with alternatives, ranges and conditions, as an expression.
        ("let x = 15; switch x { 1 | 2 => 0, 10..20 if x % 2 == 1 => 1, _ => 2 }", 1),
        # eval adds variables to the caller's scope.
        ('eval("let z = 41"); z + 1', 42),
        # i64 semantics: truncating division, remainder sign, wrapping hex literals.
        ("[-7 / 2, -7 % 2, 0xffffffffffffffff]", [-3, -1, -1]),
        ("`${1.0} ${1e20} ${[0.5, \"a\", 'c']}`", "1.0 1e20 [0.5, \"a\", 'c']"),
        # drain takes out what it picks (by predicate or span), retain keeps it.
        ("let a = [1, 2, 3, 4, 5]; let b = a.drain(|x| x % 2 == 0); [a, b]", [[1, 3, 5], [2, 4]]),
        ("let a = [1, 2, 3, 4, 5]; let b = a.retain(|x| x % 2 == 0); [a, b]", [[2, 4], [1, 3, 5]]),
        ("let a = [1, 2, 3, 4, 5]; let b = a.drain(1, 2); [a, b]", [[1, 4, 5], [2, 3]]),
        ("let a = [1, 2, 3, 4, 5]; let b = a.retain(-2); [a, b]", [[4, 5], [1, 2, 3]]),
        # A char whose other case is longer than one char stays as it is; a string changes.
        ("['ß'.to_upper(), \"aßc\".to_upper(), 'Q'.to_lower()]", ["ß", "ASSC", "q"]),
        # Lists of arguments and items may end with a comma.
        ("fn f(a, b) { a + b } [f(1, 2,), [1, 2,].len()]", [3, 2]),
    ],
)
def test_semantics(script: str, value: Any) -> None:
    assert eval(script) == value
