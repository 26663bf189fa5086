"""Actors called from Rhai, print/debug capture, and the worker-thread runner."""

from __future__ import annotations

import json

import pytest

from core.heroscript import ActionContext, ActorRegistry, ActorsSettings
from core.rhai import Engine, Limits
from core.rhai.host import run_script


@pytest.fixture
def registry() -> ActorRegistry:
    return ActorRegistry.from_settings(ActorsSettings(), plugins=False)


async def run(registry: ActorRegistry, script: str, **limits: int) -> tuple[str, str, list[str]]:
    lines: list[str] = []
    outcome = await run_script(script, registry, ActionContext(log=lines.append),
                               Limits(**limits))  # fmt: skip
    error = f"{outcome.error.kind}: {outcome.error}" if outcome.error else ""
    return outcome.result, error, lines


async def test_actor_call_with_named_params(registry: ActorRegistry) -> None:
    result, error, _ = await run(registry, 'fake::return_success(#{message: "hi"})')
    assert (result, error) == ('"hi"', "")


async def test_actor_params_are_converted_like_heroscript(registry: ActorRegistry) -> None:
    # fake.sleep takes a float: an int from Rhai is converted, a string is refused.
    result, error, _ = await run(registry, "fake::sleep(#{seconds: 0})")
    assert (result, error) == ("0.0", "")
    _, error, _ = await run(registry, 'fake::sleep(#{seconds: "soon"})')
    assert "expects float" in error
    _, error, _ = await run(registry, "fake::return_success(#{nope: 1})")
    assert "unknown parameter 'nope'" in error


async def test_actor_default_and_positional_params(registry: ActorRegistry) -> None:
    assert (await run(registry, "fake::return_success()"))[0] == '"ok"'
    assert (await run(registry, 'fake::return_success("x")'))[0] == '"x"'


async def test_unknown_actor_is_function_not_found(registry: ActorRegistry) -> None:
    _, error, _ = await run(registry, "nobody::nothing(#{})")
    assert error.startswith("ErrorFunctionNotFound")


async def test_actor_log_and_print_reach_the_job_log(registry: ActorRegistry) -> None:
    script = 'print("one"); core::echo(#{message: "two"}); debug([1, "x"]); 3'
    result, _, lines = await run(registry, script)
    assert result == "3"
    assert lines == ["one", "two", 'debug 1:46: [1, "x"]']


async def test_result_is_json(registry: ActorRegistry) -> None:
    result, _, _ = await run(registry, "#{a: [1, 2.5, 'c', ()], b: true, f: Fn(\"x\")}")
    assert json.loads(result) == {"a": [1, 2.5, "c", None], "b": True, "f": "x"}


async def test_operations_limit_in_the_runner(registry: ActorRegistry) -> None:
    _, error, _ = await run(registry, "loop {}", max_operations=1000)
    assert error.startswith("ErrorTooManyOperations")
    assert "max_operations" in error


def test_registered_function_and_namespace() -> None:
    engine = Engine()
    engine.register_fn("twice", lambda x: x * 2)
    engine.register_namespace("math2", {"add": lambda a, b: a + b})
    assert engine.eval("twice(21) + math2::add(1, 2)") == 45


def test_print_capture_with_an_engine_callback() -> None:
    seen: list[str] = []
    engine = Engine(on_print=seen.append, on_debug=lambda text, pos: seen.append(f"{pos}{text}"))
    engine.eval('print(`a${1 + 1}`); print(2.0); print(()); debug("q")')
    assert seen == ["a2", "2.0", "", '(1, 44)"q"']


async def test_print_flood_is_capped(registry: ActorRegistry) -> None:
    from core.rhai import host

    script = f"for i in 0..{host.MAX_LOG_LINES + 5} {{ print(i); }} 1"
    result, _, lines = await run(registry, script)
    assert result == "1"
    assert len(lines) == host.MAX_LOG_LINES + 1
    assert lines[-1] == "(5 more print/debug lines not logged)"
