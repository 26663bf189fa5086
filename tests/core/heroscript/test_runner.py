"""Running playbooks: order, results, first error, context, threads and cancellation."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from core.heroscript import parser
from core.heroscript.actors.registry import ActorRegistry
from core.heroscript.context import ActionContext
from core.heroscript.runner import PlaybookResult, run_playbook


class Probe:
    """Records where actions ran."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.saw_cancel = threading.Event()

    def where(self) -> str:
        """Return the thread name."""
        return threading.current_thread().name

    async def where_async(self) -> str:
        """Return the thread name."""
        return threading.current_thread().name

    def job(self, ctx: ActionContext) -> dict[str, Any]:
        """Return what the context says."""
        ctx.log("hello from job")
        assert ctx.action is not None
        return {"job": ctx.job_id, "line": ctx.action.line}

    def unjsonable(self) -> object:
        """Return something JSON cannot hold."""
        return object()

    def crash(self) -> None:
        """Raise a plain exception."""
        raise KeyError("boom")

    def block(self, ctx: ActionContext) -> str:
        """Wait in a thread until cancelled."""
        self.started.set()
        if ctx.cancelled.wait(30):
            self.saw_cancel.set()
        return "stopped"


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def registry(probe: Probe) -> ActorRegistry:
    reg = ActorRegistry()
    reg.load_builtins()
    reg.register("probe", probe)
    return reg


async def test_results_in_order_and_json(registry: ActorRegistry) -> None:
    script = "!!fake.return_success message:one\n!!core.echo message:'two words'\n!!echo a b\n"
    result = await run_playbook(parser.parse(script), registry)
    assert result.ok
    assert [(r.method, r.line, r.result) for r in result.results] == [
        ("fake.return_success", 1, "one"),
        ("core.echo", 2, "two words"),
        ("core.echo", 3, "a b"),
    ]
    assert result.to_dict()["error"] is None


async def test_stops_at_first_error_keeping_results(registry: ActorRegistry) -> None:
    script = (
        "!!fake.return_success message:a\n"
        "!!fake.return_error message:'went wrong'\n"
        "!!fake.return_success message:never\n"
    )
    result = await run_playbook(parser.parse(script), registry)
    assert [r.result for r in result.results] == ["a"]
    assert result.error is not None
    assert str(result.error) == "line 2: fake.return_error: went wrong"
    stored = result.to_dict()
    assert stored["error"]["method"] == "fake.return_error"
    assert stored["error"]["line"] == 2


async def test_misspelt_action_stops_before_running(registry: ActorRegistry) -> None:
    result = await run_playbook(parser.parse("!!fake.return_sucess message:x"), registry)
    assert result.error is not None
    assert "did you mean 'fake.return_success'" in str(result.error)


async def test_sync_runs_in_thread_async_on_loop(registry: ActorRegistry) -> None:
    result = await run_playbook(parser.parse("!!probe.where\n!!probe.where_async"), registry)
    sync_thread, async_thread = (r.result for r in result.results)
    assert async_thread == threading.current_thread().name
    assert sync_thread != async_thread


async def test_context_gives_job_id_and_log(registry: ActorRegistry) -> None:
    lines: list[str] = []
    ctx = ActionContext(job_id=42, log=lines.append)
    result = await run_playbook(parser.parse("\n!!probe.job"), registry, ctx)
    assert result.results[0].result == {"job": 42, "line": 2}
    assert "hello from job" in lines
    assert "line 2: probe.job" in lines


async def test_results_must_be_json(registry: ActorRegistry) -> None:
    result = await run_playbook(parser.parse("!!probe.unjsonable"), registry)
    assert result.error is not None
    assert "not JSON-serialisable" in result.error.message


async def test_exception_in_action_is_an_error(registry: ActorRegistry) -> None:
    result = await run_playbook(parser.parse("!!probe.crash"), registry)
    assert result.error is not None
    assert str(result.error) == "line 1: probe.crash: KeyError: 'boom'"


async def test_timeout_cancels_async_action_and_keeps_results(registry: ActorRegistry) -> None:
    ctx = ActionContext()
    partial = PlaybookResult()
    script = "!!fake.return_success message:first\n!!fake.sleep seconds:30\n"
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await run_playbook(parser.parse(script), registry, ctx, partial)
    assert [r.result for r in partial.results] == ["first"]
    assert ctx.cancelled.is_set()


async def test_timeout_abandons_sync_action_and_signals_it(
    registry: ActorRegistry, probe: Probe
) -> None:
    ctx = ActionContext()
    task = asyncio.create_task(run_playbook(parser.parse("!!probe.block"), registry, ctx))
    assert await asyncio.to_thread(probe.started.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(probe.saw_cancel.wait, 10)


async def test_cancelled_context_stops_before_next_action(registry: ActorRegistry) -> None:
    ctx = ActionContext()
    ctx.cancelled.set()
    result = await run_playbook(parser.parse("!!fake.return_success"), registry, ctx)
    assert result.results == []
    assert result.error is not None
    assert "cancelled" in result.error.message


async def test_bad_late_action_stops_before_any_side_effect(registry: ActorRegistry) -> None:
    script = "!!probe.job\n!!fake.sleep seconds:soon\n"
    lines: list[str] = []
    result = await run_playbook(parser.parse(script), registry, ActionContext(log=lines.append))
    assert result.results == []
    assert str(result.error) == "line 2: fake.sleep: parameter 'seconds' expects float, got 'soon'"
    assert "hello from job" not in lines
