"""A job that runs on a `heroagent worker` streams its log lines to the engine's /events."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.config import Config
from core.engine import Engine
from tests.core.http_ui.conftest import ui_url, wait_status
from tests.core.http_ui.test_api import read_events
from tests.helpers import spawn_worker


@pytest.fixture
async def owner(engine_config: Config) -> AsyncIterator[Engine]:
    """An engine with the HTTP UI that runs no jobs itself: only remote workers do."""
    config = replace(
        engine_config, enable_webdav=False, jobs=replace(engine_config.jobs, worker_count=0)
    )
    async with Engine(config) as engine:
        yield engine


@dataclass
class RemoteRun:
    """A job submitted over HTTP to an engine whose only worker is another process."""

    http: httpx.AsyncClient
    lines: AsyncIterator[str]
    job_id: int
    worker: subprocess.Popen[bytes]


@asynccontextmanager
async def remote_run(
    owner: Engine, short_tmp: Path, body: dict[str, Any], types: str | None = None
) -> AsyncIterator[RemoteRun]:
    """`body` submitted while `/events` (of `types`, or the default ones) is being read."""
    worker = spawn_worker(owner.redis.url(with_password=True), short_tmp / "worker-data")
    params = {"types": types} if types else None
    try:
        async with (
            httpx.AsyncClient(base_url=ui_url(owner), timeout=10) as http,
            http.stream("GET", "/events", params=params) as stream,
        ):
            lines = stream.aiter_lines()
            await read_events(lines, lambda ms: len(ms) >= 1)  # ready
            created = await http.post("/api/jobs", json=body)
            assert created.status_code == 201, created.text
            yield RemoteRun(http, lines, created.json()["job_id"], worker)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(10)


async def test_log_lines_of_a_remote_job_reach_the_event_stream(
    owner: Engine, short_tmp: Path
) -> None:
    body = {"params": "!!core.echo message:'from afar'\n", "topic": "far", "log": True}
    async with remote_run(owner, short_tmp, body, types="job,job_log") as run:

        def logged(messages: list[tuple[str, Any]]) -> bool:
            return any(
                name == "job_log" and data["job_id"] == run.job_id and data["line"] == "from afar"
                for name, data in messages
            )

        messages = await read_events(run.lines, logged, seconds=30)
        # Its end: read while it ends, it may show the version stored before it ran.
        job = await wait_status(run.http, run.job_id)
    lines_seen = [d["line"] for n, d in messages if n == "job_log" and d["job_id"] == run.job_id]
    assert lines_seen.count("from afar") == 1
    # It ran in the worker process, not in this one.
    assert job["worker"].split(":")[1] == str(run.worker.pid)


async def test_progress_of_a_remote_job_reaches_the_event_stream(
    owner: Engine, short_tmp: Path
) -> None:
    body = {"params": "!!fake.progress steps:3 seconds:0.05\n", "topic": "far"}
    async with remote_run(owner, short_tmp, body) as run:

        def finished(messages: list[tuple[str, Any]]) -> bool:
            return any(
                name == "job_progress" and data["job_id"] == run.job_id and data["fraction"] == 1
                for name, data in messages
            )

        messages = await read_events(run.lines, finished, seconds=30)
        job = await wait_status(run.http, run.job_id)
    seen = [d for n, d in messages if n == "job_progress" and d["job_id"] == run.job_id]
    assert seen[-1]["message"] == "step 3 of 3"
    assert [d["fraction"] for d in seen] == sorted(d["fraction"] for d in seen)
    assert job["worker"].split(":")[1] == str(run.worker.pid)
    # The last value stays with the job once it ended, on the HTTP API too.
    assert (job["progress"], job["progress_message"]) == (1.0, "step 3 of 3")
