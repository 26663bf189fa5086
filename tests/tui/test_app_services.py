"""The Dashboard shows the real engine's services and follows their state changes."""

from __future__ import annotations

from textual.widgets import DataTable

from core.config import Config
from core.engine import Engine
from heroagent_tui.app import create_app
from tests.helpers import async_wait_for


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
