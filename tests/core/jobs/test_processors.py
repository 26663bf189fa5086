"""The processors (RhaiScript, AI, OpenRPC, HeroScript results) and job log streaming."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from core.config import Config
from core.engine import Engine
from core.events import JobLogLine
from core.heroscript import ActionContext, ActorRegistry
from core.jobs import Job, JobStatus
from core.watchdog.processors import Processors, ProcessorSettings
from tests.helpers import wait_jobs_ended


async def run_to_end(engine: Engine, params: str, params_type: str, **kw: Any) -> Job:
    job = await engine.jobs.create_job("t", params, params_type=params_type, **kw)
    await wait_jobs_ended(engine, [job.job_id], 15)
    return await engine.jobs.get_job(job.job_id)


class ChatStub(BaseHTTPRequestHandler):
    """An OpenAI-compatible /chat/completions that echoes the last user message."""

    seen: list[dict[str, Any]] = []  # noqa: RUF012 - the test reads what the stub got

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ChatStub.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
        content = "echo: " + body["messages"][-1]["content"]
        reply = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(reply.encode())

    def log_message(self, *_: object) -> None:
        return None


@pytest.fixture
def chat_stub() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ChatStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def configured(engine_config: Config, chat_stub: str) -> AsyncIterator[Engine]:
    runner = f"{sys.executable} -c \"import sys; print(sys.stdin.read().upper(), end='')\""
    config = replace(
        engine_config,
        enable_webdav=False,
        enable_ui=False,
        jobs=replace(engine_config.jobs, rhai_command=runner),
        ai=replace(engine_config.ai, base_url=chat_stub, model="tiny", api_key="k1"),
    )
    async with Engine(config) as engine:
        yield engine


async def test_rhaiscript_runs_the_configured_runner(configured: Engine) -> None:
    job = await run_to_end(configured, "let x = 40 + 2;", "rhaiscript")
    assert job.status is JobStatus.DONE
    assert job.result == "LET X = 40 + 2;"


async def test_ai_calls_the_configured_endpoint(configured: Engine) -> None:
    job = await run_to_end(configured, "say hi", "ai")
    assert job.status is JobStatus.DONE
    assert job.result == "echo: say hi"
    request = ChatStub.seen[-1]
    assert request["path"] == "/v1/chat/completions"
    assert request["model"] == "tiny"
    assert request["auth"] == "Bearer k1"


async def test_unconfigured_runners_fail_clearly(engine: Engine) -> None:
    # Without jobs.rhai_command, RhaiScript runs in the embedded interpreter.
    rhai = await run_to_end(engine, "1 + 1", "rhaiscript")
    assert rhai.status is JobStatus.DONE
    assert rhai.result == "2"
    ai = await run_to_end(engine, "hello", "ai")
    assert ai.error == "no AI endpoint configured (ai.base_url and ai.model)"


async def test_openrpc_job_returns_the_response(engine: Engine) -> None:
    request = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "fake.return_success",
        "params": {"message": "x"},
    }
    job = await run_to_end(engine, json.dumps(request), "openrpc")
    assert job.status is JobStatus.DONE
    assert json.loads(job.result) == {"jsonrpc": "2.0", "id": 7, "result": "x"}
    bad = {"jsonrpc": "2.0", "id": 8, "method": "fake.nothing", "params": {}}
    failed = await run_to_end(engine, json.dumps(bad), "openrpc")
    assert failed.status is JobStatus.ERROR
    assert json.loads(failed.result)["error"]["code"] == -32601


async def test_log_lines_are_streamed_and_kept(engine: Engine) -> None:
    with engine.bus.subscribe() as events:
        job = await run_to_end(engine, "!!core.echo message:first\n!!core.echo message:second\n",
                               "heroscript", log=True)  # fmt: skip
        streamed = [e.line for e in events.drain() if isinstance(e, JobLogLine)]
    assert [line for line in streamed if not line.startswith("line ")] == ["first", "second"]
    assert "second" in job.log_lines
    quiet = await run_to_end(engine, "!!core.echo message:hidden\n", "heroscript")
    assert quiet.log_lines == []


class OddText:
    """Actions whose results test how a job's result is written."""

    def lone_surrogate(self) -> str:
        """What `json.loads('"\\ud800"')` makes: text UTF-8 cannot carry."""
        text: str = json.loads('"a\\ud800b"')
        return text

    def plain(self, word: str, times: int) -> list[str]:
        return [word] * times


async def test_a_heroscript_result_is_compact_json_with_text_utf8_cannot_carry_replaced() -> None:
    registry = ActorRegistry()
    registry.register("odd", OddText())
    processors = Processors(registry, ProcessorSettings())
    job = Job(job_id=1, topic="t", params="!!odd.plain word:hi times:2\n!!odd.lone_surrogate\n")

    outcome = await processors.run(job, ActionContext())

    assert outcome.status is JobStatus.DONE, outcome.error
    plain, odd = json.loads(outcome.result)
    # Replaced here, as the report to Redis would replace it: UTF-8 cannot carry it.
    assert (plain["result"], odd["result"]) == (["hi", "hi"], "a?b")
    assert outcome.result.startswith('[{"id":1,')
