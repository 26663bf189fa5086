"""The app as `heroagent` runs it: the engine on a thread and loop of its own."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest
from textual.pilot import Pilot

from core import engine_thread
from core.config import Config
from core.engine import Engine
from core.engine_thread import EngineThread
from heroagent_tui.app import HeroAgentApp, create_app
from heroagent_tui.screens.jobs import JobsScreen
from heroagent_tui.screens.queues import QueuesScreen
from heroagent_tui.widgets.job_table import JobTable
from tests.tui.conftest import submit_from_editor, until


@asynccontextmanager
async def app_beside_engine_thread(
    config: Config,
) -> AsyncIterator[tuple[EngineThread, Engine, HeroAgentApp, Pilot[int]]]:
    """The app on this loop, its engine started on an `EngineThread`, as `run_app` does."""
    host = EngineThread()
    try:
        engine, api = await host.build(lambda: Engine(replace(config, enable_webdav=False)))
        app = create_app(engine, api=api)
        try:
            async with app.run_test(size=(120, 40)) as pilot:
                await host.call(engine.start())
                await pilot.pause()
                yield host, engine, app, pilot
        finally:
            await host.call(engine.stop())
    finally:
        await host.close()


async def test_a_job_submitted_from_the_app_runs_on_the_engine_thread_and_shows_done(
    engine_config: Config,
) -> None:
    async with app_beside_engine_thread(engine_config) as (host, _, app, pilot):
        detail = await submit_from_editor(pilot, "!!fake.return_success message:far")
        assert detail.job is not None
        assert "far" in detail.job.result
        # Its states came through the subscription woken across the threads.
        await pilot.press("escape", "3")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen), what="Jobs")
        table = app.screen.query_one(JobTable)
        key = str(detail.job_id)
        await until(
            pilot,
            lambda: key in table.rows and str(table.get_cell(key, "status")) == "done",
            what="done in Jobs",
        )
    assert host.loop.is_closed()


async def test_keys_are_answered_while_the_engine_loop_is_held(engine_config: Config) -> None:
    async with app_beside_engine_thread(engine_config) as (host, _, app, pilot):
        holding, release = threading.Event(), threading.Event()

        def hold() -> None:
            holding.set()
            release.wait(30)

        host.loop.call_soon_threadsafe(hold)
        try:
            assert holding.wait(10)
            await pilot.press("2")
            await until(pilot, lambda: isinstance(app.screen, QueuesScreen), what="Queues")
            # Drawn while the engine's loop was still busy.
            assert not release.is_set()
        finally:
            release.set()


async def test_closing_gives_up_on_a_task_that_ignores_its_cancel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine_thread, "CLOSE_SECONDS", 0.5)
    host = EngineThread()
    running, released = threading.Event(), threading.Event()

    async def stubborn() -> None:
        running.set()
        while not released.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.05)

    started = asyncio.get_running_loop().time()
    host.loop.call_soon_threadsafe(lambda: host.loop.create_task(stubborn()))
    try:
        assert await asyncio.to_thread(running.wait, 10)
        await host.close()
        assert asyncio.get_running_loop().time() - started < 5
        assert host._thread.is_alive()
    finally:
        released.set()
        await asyncio.to_thread(host._thread.join, 10)
    assert host.loop.is_closed()
