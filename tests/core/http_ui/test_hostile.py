"""Large and unusual bodies are refused or processed while the engine keeps answering."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.api import JobRefused
from core.engine import Engine
from core.heroscript import MAX_SCRIPT_BYTES
from tests.core.test_serve import Serve
from tests.helpers import free_port, pid_running

# A value of quotes and commas: the shape that used to cost quadratic time.
QUOTED_48K = "!!core.echo message:'" + "a,'b" * ((MAX_SCRIPT_BYTES - 64) // 4) + "'\n"
ONE_MB = "!!core.echo message:'" + "'" * (1024 * 1024) + "\n"


async def healthz_while(client: httpx.AsyncClient, work: asyncio.Task[Any]) -> None:
    """Ask /healthz again and again until `work` is done; each must answer 200."""
    while True:
        assert (await client.get("/healthz")).status_code == 200
        if work.done():
            return


@pytest.fixture
async def served(short_tmp: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an engine in its own process: what is timed is the engine's loop alone."""
    port = free_port()
    server = Serve(short_tmp / "data", "--ui-port", str(port))
    try:
        server.wait_ready()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            yield http
    finally:
        pid = server.server_pid()
        if server.proc.poll() is None:
            server.proc.send_signal(signal.SIGTERM)
            server.proc.wait(20)
        server.close()
        if pid is not None and pid_running(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(
    ("path", "body", "statuses"),
    [
        ("/api/jobs", {"params": QUOTED_48K, "topic": "big"}, {201, 422}),
        ("/api/validate", {"text": QUOTED_48K}, {200}),
        ("/api/jobs", {"params": ONE_MB, "topic": "huge"}, {413, 422}),
        ("/api/validate", {"text": ONE_MB}, {200, 413}),
    ],
)
async def test_the_engine_answers_while_a_large_text_is_handled(
    served: httpx.AsyncClient, path: str, body: dict[str, str], statuses: set[int]
) -> None:
    work = asyncio.create_task(served.post(path, json=body))
    await healthz_while(served, work)
    response = await work
    assert response.status_code in statuses, response.text[:300]
    # A refusal names the place, it does not echo the text back.
    assert len(response.content) < 8_192, response.text[:300]


# A big text is parsed off the loop: other work goes on meanwhile. What is counted is
# the loop's own turns during the call (none if it were held), not a time.
@pytest.mark.parametrize("what", ["validate", "submit"])
async def test_a_big_text_is_parsed_while_the_loop_goes_on(engine: Engine, what: str) -> None:
    turns = 0
    stop = asyncio.Event()

    async def turn() -> None:
        nonlocal turns
        while not stop.is_set():
            turns += 1
            await asyncio.sleep(0)

    counting = asyncio.create_task(turn())
    await asyncio.sleep(0)
    before = turns
    try:
        if what == "validate":
            await engine.api.validate(QUOTED_48K)
        else:
            with contextlib.suppress(JobRefused):
                await engine.api.submit(QUOTED_48K, topic="big")
        during = turns - before
    finally:
        stop.set()
        await counting
    assert during >= 1


async def test_validate_names_the_size_of_an_oversized_text(client: httpx.AsyncClient) -> None:
    text = "!!core.echo message:'" + "x" * MAX_SCRIPT_BYTES + "'\n"
    problems = (await client.post("/api/validate", json={"text": text})).json()["problems"]
    assert len(problems) == 1
    assert f"the limit is {MAX_SCRIPT_BYTES:,} bytes" in problems[0]["message"]


@pytest.mark.parametrize("path", ["/api/jobs", "/api/validate"])
async def test_a_lone_surrogate_is_refused_not_a_server_error(
    client: httpx.AsyncClient, path: str
) -> None:
    raw = b'{"params": "!!core.echo message:\\ud800", "text": "!!core.echo message:\\ud800"}'
    response = await client.post(path, content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert response.json()["problems"], "a lone surrogate must be a problem"
