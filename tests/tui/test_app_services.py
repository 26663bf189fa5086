"""The Dashboard shows the real engine's services and workers, and follows their state."""

from __future__ import annotations

import socket

from textual.widgets import DataTable

from core.config import Config
from core.engine import Engine
from core.jobs.queue import JobQueue
from heroagent_tui.app import create_app
from tests.helpers import async_wait_for
from tests.tui.conftest import running_app, until


async def test_services_table_follows_the_engine(engine_config: Config) -> None:
    engine = Engine(engine_config, fail_fast=False)
    app = create_app(engine)
    async with app.run_test() as pilot:
        await pilot.pause()
        table = app.screen.query_one("#services", DataTable)
        assert table.get_row("redis")[1] == "stopped"
        await engine.start()
        await async_wait_for(
            lambda: table.get_row("redis")[1] == "running", 10, "redis to show as running"
        )
        row = table.get_row("redis")
        assert str(engine_config.redis.tcp_port) in row[2]
        assert row[3] == str(engine.redis.pid())
        await pilot.press("q")
    await engine.stop()
    assert engine.redis.pid() is None


async def test_a_failing_service_shows_its_error_while_the_rest_runs(
    engine_config: Config,
) -> None:
    engine_config.webdav.port = engine_config.redis.tcp_port  # taken by redis: webdav fails
    engine = Engine(engine_config, fail_fast=False)
    app = create_app(engine)
    try:
        async with app.run_test() as pilot:
            await engine.start()
            await pilot.pause()
            table = app.screen.query_one("#services", DataTable)
            await async_wait_for(
                lambda: table.get_row("webdav")[1] == "failed", 10, "webdav to show as failed"
            )
            assert "in use" in table.get_row("webdav")[5]  # the error, in place
            await async_wait_for(
                lambda: table.get_row("jobs")[1] == "running", 10, "jobs to keep working"
            )
    finally:
        await engine.stop()


async def test_the_workers_table_shows_live_and_lost_workers(engine_config: Config) -> None:
    async with running_app(engine_config) as (engine, app, pilot):
        table = app.screen.query_one("#workers", DataTable)
        own = await until(
            pilot,
            lambda: [k for k in table.rows if table.get_row(k)[1].plain == "alive"],
            10,
            "the engine's own watchdog to show",
        )
        assert table.get_row(own[0])[2] == socket.gethostname()
        assert table.get_row(own[0])[3] == str(engine.config.jobs.worker_count)
        # A worker that beat once with a short lease and died: its record outlives the lease.
        queue = JobQueue(engine.redis.loop_client())
        try:
            await queue.heartbeat("gone:1:abcdef", 0.2, 3, 2)
        finally:
            await queue.redis.aclose()

        def lost() -> bool:
            gone = "gone:1:abcdef"
            return gone in table.rows and table.get_row(gone)[1].plain == "lost"

        await until(pilot, lost, 10, "the dead worker to show as lost")
        row = table.get_row("gone:1:abcdef")
        assert row[1].style.bold
        assert (row[3], row[4]) == ("3", "2")
