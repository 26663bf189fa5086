"""Helpers for driving the app against a real engine (real valkey-server, temp dirs)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import TypeVar

from textual.pilot import Pilot

from core.config import Config
from core.engine import Engine
from heroagent_tui.app import HeroAgentApp, create_app
from heroagent_tui.format import DisplayFormat
from heroagent_tui.screens.job_detail import JobDetailScreen
from heroagent_tui.screens.submit import SubmitScreen
from heroagent_tui.widgets.heroscript_area import HeroScriptArea
from tests.helpers import async_wait_for

T = TypeVar("T")


@asynccontextmanager
async def running_app(
    config: Config,
    *,
    size: tuple[int, int] = (120, 40),
    fmt: DisplayFormat | None = None,
    webdav: bool = False,
) -> AsyncIterator[tuple[Engine, HeroAgentApp, Pilot[int]]]:
    """The app on a started engine; the engine stops afterwards whatever happens."""
    engine = Engine(replace(config, enable_webdav=webdav), fail_fast=False)
    app = create_app(engine, fmt=fmt)
    try:
        async with app.run_test(size=size) as pilot:
            await engine.start()
            await pilot.pause()
            yield engine, app, pilot
    finally:
        await engine.stop()


async def until(
    pilot: Pilot[int], predicate: Callable[[], T], seconds: float = 10.0, what: str = "condition"
) -> T:
    """Let the app run until `predicate` holds, or fail after `seconds`."""

    def check() -> T:
        return predicate()

    await pilot.pause()
    return await async_wait_for(check, seconds, what)


async def open_detail(pilot: Pilot[int], job_id: int) -> JobDetailScreen:
    """Press enter on a list and wait for the detail of `job_id`."""
    await pilot.press("enter")
    detail = await until(
        pilot, lambda: isinstance(pilot.app.screen, JobDetailScreen) and pilot.app.screen
    )
    assert isinstance(detail, JobDetailScreen)
    assert detail.job_id == job_id
    return detail


async def submit_from_editor(pilot: Pilot[int], text: str) -> JobDetailScreen:
    """Type `text` into Submit's editor, submit it, and return its detail once it is done."""
    app = pilot.app
    await pilot.press("5")
    await until(pilot, lambda: isinstance(app.screen, SubmitScreen), what="Submit")
    editor = app.screen.query_one(HeroScriptArea)
    editor.clear()
    await pilot.press(*text)
    assert editor.text == text
    await pilot.press("ctrl+s")
    detail = await until(
        pilot, lambda: isinstance(app.screen, JobDetailScreen) and app.screen, what="detail"
    )
    assert isinstance(detail, JobDetailScreen)
    await until(pilot, lambda: detail.job is not None and detail.job.status == "done")
    return detail
