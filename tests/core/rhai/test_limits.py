"""Sandbox limits: each breach is an error naming the limit, and try/catch cannot hide it."""

from __future__ import annotations

import pytest

from core.rhai import Engine, ErrorLimit, Limits, RhaiError, RhaiRuntimeError


def breach(script: str, **limits: int) -> ErrorLimit:
    with pytest.raises(ErrorLimit) as info:
        Engine(Limits(**limits)).eval(script)
    return info.value


@pytest.mark.parametrize(
    ("script", "limits", "kind", "name"),
    [
        ("loop {}", {"max_operations": 10_000}, "ErrorTooManyOperations", "max_operations"),
        ("let i = 0; while true { i += 1; }", {"max_operations": 1000},
         "ErrorTooManyOperations", "max_operations"),
        ("fn f(n) { f(n + 1) } f(0)", {"max_call_levels": 20}, "ErrorStackOverflow",
         "max_call_levels"),
        ('let s = ""; loop { s += "xxxxxxxxxx"; }', {"max_string_size": 1000},
         "ErrorDataTooLarge", "max_string_size"),
        ("let a = []; loop { a.push(1); }", {"max_array_size": 100}, "ErrorDataTooLarge",
         "max_array_size"),
        ("let a = []; a.pad(1000, 0);", {"max_array_size": 100}, "ErrorDataTooLarge",
         "max_array_size"),
        ("let m = #{}; let i = 0; loop { m[`k${i}`] = i; i += 1; m += #{}; }",
         {"max_map_size": 50}, "ErrorDataTooLarge", "max_map_size"),
        ("let a = 1; let b = 2; let c = 3;", {"max_variables": 2}, "ErrorTooManyVariables",
         "max_variables"),
        # Copying nested arrays costs an operation per element: no exponential blow-up.
        ("let a = [[1]]; loop { a = [a, a]; }", {"max_operations": 100_000},
         "ErrorTooManyOperations", "max_operations"),
    ],
)  # fmt: skip
def test_limit_breach_names_the_limit(
    script: str, limits: dict[str, int], kind: str, name: str
) -> None:
    err = breach(script, **limits)
    assert err.kind == kind
    assert err.limit == name
    assert name in str(err)


def test_try_catch_cannot_swallow_a_limit() -> None:
    script = "loop { try { loop {} } catch { } }"
    assert breach(script, max_operations=5000).limit == "max_operations"


def test_stop_from_outside_terminates() -> None:
    engine = Engine(Limits(max_operations=0))
    rt = engine.new_runtime()
    rt.stop()
    with pytest.raises(RhaiRuntimeError) as info:
        engine.eval("loop {}", rt)
    assert info.value.kind == "ErrorTerminated"


def test_no_file_or_process_access_without_registered_functions() -> None:
    for script in ('open("/etc/passwd")', 'system("ls")', 'import "os" as os;', "exec(1)"):
        with pytest.raises(RhaiError, match=r"(?i)not"):
            Engine().eval(script)
