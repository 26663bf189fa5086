"""The page in headless Chromium (Debian's, driven by Playwright) against a real engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Literal

import httpx
import pytest
from playwright.async_api import APIResponse, Browser, Page, Route, expect

from core.config import Config
from core.engine import Engine
from tests.browser import chromium, needs_chromium
from tests.core.http_ui.conftest import ui_url
from tests.helpers import async_wait_for

pytestmark = needs_chromium


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as running:
        yield running


@pytest.fixture
async def page(browser: Browser, ui_engine: Engine) -> AsyncIterator[Page]:
    context = await browser.new_context()
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    await tab.goto(ui_url(ui_engine) + "/")
    await expect(tab.locator("#connection")).to_have_text("live")
    yield tab
    await context.close()
    assert errors == []


async def test_page_shows_services_and_queues(page: Page) -> None:
    await expect(page.locator('#services tr[data-service="jobs"]')).to_contain_text("running")
    await expect(page.locator('#services tr[data-service="ui"]')).to_contain_text("running")
    # The polled workers table: the engine's own watchdog, alive.
    await expect(page.locator("#workers tbody")).to_contain_text("alive")


async def test_submit_through_the_form_and_watch_it_finish(page: Page) -> None:
    await page.fill("#submit-topic", "browser")
    await page.fill("#submit-params", "!!fake.sleep seconds:0.3\n")
    # Keyboard only: Ctrl+Enter from the params submits the form.
    await page.focus("#submit-params")
    await page.keyboard.press("Control+Enter")
    result = page.locator("#submit-result")
    await expect(result).to_contain_text("submitted")
    job_id = await result.get_attribute("data-job-id")
    row = page.locator(f'#jobs-table tr[data-job="{job_id}"]')
    await expect(row).to_contain_text("default/browser")
    # No reload: the row moves to done through the event stream.
    await expect(row.locator("td").nth(2)).to_have_text("done", timeout=10_000)
    await expect(page.locator("#queues")).to_contain_text("default/browser")
    # Open it with the keyboard: the version timeline shows each status.
    await row.get_by_role("button").focus()
    await page.keyboard.press("Enter")
    timeline = page.locator("#job-timeline li")
    await expect(timeline).to_have_count(3)
    await expect(timeline.nth(2)).to_contain_text("done")
    await page.keyboard.press("Escape")
    await expect(page.locator("#job-dialog")).not_to_be_visible()


async def test_form_shows_heroscript_errors(page: Page) -> None:
    await page.fill("#submit-params", "!!fake.return_success message:ok\n!!fake.nope x:1\n")
    problems = page.locator("#submit-problems li")
    await expect(problems.first).to_contain_text("line 2, col 1")
    await page.click("#submit-button")
    await expect(page.locator("#submit-result")).to_have_text("refused at line 2, col 1")


async def test_user_input_is_shown_escaped(page: Page, ui_engine: Engine) -> None:
    payload = '<img src=x onerror="document.body.dataset.pwned=1"><script>window.pwned=1</script>'
    text = f"!!fake.return_success message:'{payload}'\n"
    async with httpx.AsyncClient(base_url=ui_url(ui_engine)) as http:
        response = await http.post("/api/jobs", json={"params": text, "topic": "xss"})
        assert response.status_code == 201, response.text
        job = response.json()
        failing = {"params": "!!fake.return_error message:'<b>bold</b>'\n", "topic": "xss"}
        bad = (await http.post("/api/jobs", json=failing)).json()
    row = page.locator(f'#jobs-table tr[data-job="{bad["job_id"]}"]')
    await expect(row.locator("td").nth(2)).to_have_text("error", timeout=10_000)
    await page.locator(f'#jobs-table tr[data-job="{job["job_id"]}"] button').click()
    await expect(page.locator("#job-params")).to_have_text(text)
    assert await page.locator("#job-params img, #job-params script").count() == 0
    assert await page.evaluate(
        "document.body.dataset.pwned === undefined && window.pwned === undefined"
    )
    await page.keyboard.press("Escape")
    await page.locator(f'#jobs-table tr[data-job="{bad["job_id"]}"] button').click()
    await expect(page.locator("#job-fields")).to_contain_text("<b>bold</b>")
    assert await page.locator("#job-dialog b").count() == 0


async def test_login_form_gives_the_page_its_token(browser: Browser, engine_config: Config) -> None:
    config = replace(
        engine_config, enable_webdav=False, ui=replace(engine_config.ui, token="tok-1")
    )
    async with Engine(config) as engine:
        context = await browser.new_context()
        tab = await context.new_page()
        await tab.goto(ui_url(engine) + "/")
        await expect(tab.locator("#login-dialog")).to_be_visible()
        await tab.fill("#login-token", "wrong")
        await tab.press("#login-token", "Enter")
        await expect(tab.locator("#login-error")).to_contain_text("not accepted")
        await tab.fill("#login-token", "tok-1")
        await tab.press("#login-token", "Enter")
        await expect(tab.locator("#connection")).to_have_text("live")
        await expect(tab.locator('#services tr[data-service="ui"]')).to_contain_text("running")
        assert "tok-1" not in tab.url
        await context.close()


async def test_readable_in_light_and_dark(page: Page) -> None:
    def luminance(rgb: str) -> float:
        r, g, b = (int(x) for x in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3])
        return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255

    colours = (
        "[getComputedStyle(document.body).backgroundColor, getComputedStyle(document.body).color]"
    )
    schemes: tuple[tuple[Literal["light", "dark"], bool], ...] = (("light", False), ("dark", True))
    for scheme, dark_background in schemes:
        await page.emulate_media(color_scheme=scheme)
        background, text = await page.evaluate(colours)
        assert (luminance(background) < 0.5) is dark_background, scheme
        # Text and background far apart in brightness, whichever the scheme.
        assert abs(luminance(background) - luminance(text)) > 0.6, scheme


async def test_a_running_job_shows_a_progress_bar_in_its_row_and_detail(page: Page) -> None:
    await page.fill("#submit-topic", "bar")
    # Two steps, then a long wait: the bar stays at its last value while the job runs.
    script = "!!fake.progress steps:2 seconds:0.1\n!!fake.sleep seconds:60\n"
    await page.fill("#submit-params", script)
    await page.click("#submit-button")
    result = page.locator("#submit-result")
    await expect(result).to_contain_text("submitted")
    job_id = await result.get_attribute("data-job-id")
    row = page.locator(f'#jobs-table tr[data-job="{job_id}"]')
    bar = row.locator("progress")
    await expect(bar).to_have_attribute("title", "100% step 2 of 2", timeout=10_000)
    await expect(bar).to_have_js_property("value", 1)
    await row.get_by_role("button").click()
    await expect(page.locator("#job-progress-value")).to_contain_text("100% step 2 of 2")
    await page.click("#job-cancel")
    await expect(row.locator("td").nth(2)).to_have_text("error", timeout=10_000)
    # The bar is for running jobs only.
    await expect(bar).to_have_count(0)


async def test_a_list_read_before_an_event_does_not_undo_it(page: Page, ui_engine: Engine) -> None:
    """The history list and the event stream race; the page keeps the stream's newer state."""
    async with httpx.AsyncClient(base_url=ui_url(ui_engine)) as http:
        (await http.post("/api/queues/default/race/pause")).raise_for_status()
        created = await http.post(
            "/api/jobs",
            json={"topic": "race", "params": "!!fake.sleep seconds:60\n", "timeout": 90},
        )
        job_id = created.json()["job_id"]
        row = page.locator(f'#jobs-table tr[data-job="{job_id}"]')
        await expect(row.locator("td").nth(2)).to_have_text("new")

        # Hold the next list read: it is taken while the job waits, and answered after the
        # stream has told the page the job started.
        held: list[APIResponse] = []
        answered = asyncio.Event()

        async def hold(route: Route) -> None:
            response = await route.fetch()
            held.append(response)
            await answered.wait()
            await route.fulfill(response=response)

        await page.route("**/api/jobs?*", hold)
        await page.dispatch_event("#jobs-status", "change")
        await async_wait_for(lambda: held, what="the list read to be held")
        listed = {job["job_id"]: job["status"] for job in (await held[0].json())["jobs"]}
        assert listed[job_id] == "new"

        (await http.post("/api/queues/default/race/resume")).raise_for_status()
        await expect(row.locator("td").nth(2)).to_have_text("active", timeout=10_000)
        answered.set()
        # The stale list is in: the row is built again from it, and still says active.
        await expect(page.locator("#jobs-table tr.fresh")).to_have_count(0)
        await expect(row.locator("td").nth(2)).to_have_text("active")
        (await http.post(f"/api/jobs/{job_id}/cancel")).raise_for_status()
