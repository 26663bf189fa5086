"""RhaiScript jobs in the embedded interpreter, on a real engine (valkey, watchdog, OurDB)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from core.engine import Engine
from core.jobs import Job, JobStatus
from tests.helpers import async_wait_for, wait_jobs_ended


async def run_to_end(engine: Engine, params: str, seconds: float = 30.0, **kw: Any) -> Job:
    job = await engine.jobs.create_job("t", params, params_type="rhaiscript", **kw)
    await wait_jobs_ended(engine, [job.job_id], seconds)
    return await engine.jobs.get_job(job.job_id)


async def test_script_with_no_configuration_returns_its_value(engine: Engine) -> None:
    job = await run_to_end(engine, "let x = 40; x + 2")
    assert job.status is JobStatus.DONE
    assert job.result == "42"


async def test_script_calls_an_actor_and_returns_its_result(engine: Engine) -> None:
    job = await run_to_end(engine, 'let r = fake::return_success(#{message: "hi"}); [r, r.len]')
    assert job.status is JobStatus.DONE, job.error
    assert json.loads(job.result) == ["hi", 2]


async def test_failing_actor_is_a_catchable_error(engine: Engine) -> None:
    failed = await run_to_end(engine, 'fake::return_error(#{message: "disk full"})')
    assert failed.status is JobStatus.ERROR
    assert "disk full" in failed.error
    caught = await run_to_end(
        engine, 'try { fake::return_error(#{message: "x"}); 1 } catch (e) { e.message }'
    )
    assert caught.status is JobStatus.DONE
    assert "x" in json.loads(caught.result)


async def test_print_and_debug_go_to_the_job_log(engine: Engine) -> None:
    job = await run_to_end(engine, 'print("hello"); debug("dbg"); 7', log=True)
    assert job.status is JobStatus.DONE
    assert "hello" in job.log_lines
    assert any('"dbg"' in line for line in job.log_lines)


async def test_parse_error_names_line_and_column(engine: Engine) -> None:
    job = await run_to_end(engine, "let x = 1;\nlet = 2;")
    assert job.status is JobStatus.ERROR
    assert "line 2, position 5" in job.error


async def test_endless_loop_stops_at_the_operations_limit(engine: Engine) -> None:
    started = time.monotonic()
    spinning = await engine.jobs.create_job("t", "loop {}", params_type="rhaiscript")
    # While the loop spins in its thread, the engine keeps serving other jobs.
    quick = await run_to_end(engine, "1 + 1", seconds=10)
    assert quick.status is JobStatus.DONE
    assert quick.result == "2"
    await wait_jobs_ended(engine, [spinning.job_id], 60)
    job = await engine.jobs.get_job(spinning.job_id)
    assert job.status is JobStatus.ERROR
    assert "ErrorTooManyOperations" in job.error
    assert "max_operations" in job.error
    assert time.monotonic() - started < job.timeout


@pytest.mark.parametrize(
    "script",
    [
        pytest.param("let n = 0; loop { n += 1; }", id="spinning"),
        pytest.param("fake::sleep(#{seconds: 30}); 1", id="waiting-on-an-actor"),
    ],
)
async def test_timeout_stops_the_script_thread(engine: Engine, script: str) -> None:
    job = await run_to_end(engine, script, timeout=0.5)
    assert job.status is JobStatus.ERROR
    assert "timeout" in job.error

    def no_script_threads() -> bool:
        return not any(t.name == "rhai-script" and t.is_alive() for t in threading.enumerate())

    await async_wait_for(no_script_threads, 5.0, "the script thread to end")
