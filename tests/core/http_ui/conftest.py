"""Fixtures of the HTTP UI tests: a client bound to a running engine's UI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from core.engine import Engine


def ui_url(engine: Engine) -> str:
    """The page's URL, without the trailing slash."""
    return engine.services["ui"].address().rstrip("/")


@pytest.fixture
async def client(ui_engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=ui_url(ui_engine), timeout=10) as http:
        yield http


async def wait_status(
    client: httpx.AsyncClient, job_id: int, statuses: tuple[str, ...] = ("done", "error")
) -> dict[str, Any]:
    """Poll the API until the job and its stored history both reach one of `statuses`.

    One detail reads the job, then its history: an end stored between the two shows in
    the history only, so both must say it.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        detail = (await client.get(f"/api/jobs/{job_id}")).json()
        job: dict[str, Any] = detail["job"]
        if job["status"] in statuses and detail["history"][-1]["status"] in statuses:
            return job
        assert loop.time() < deadline, f"job {job_id} stayed {job['status']}"
        await asyncio.sleep(0.02)
