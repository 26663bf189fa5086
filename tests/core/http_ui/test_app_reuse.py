"""An app built for one UI start serves the next start, of the same engine or another."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx

from core.config import Config
from core.engine import Engine
from core.http_ui.service import HttpUIService
from tests.core.http_ui.conftest import ui_url
from tests.helpers import free_port, wait_job_ended

JOB = {"params": "!!fake.return_success message:hi\n", "topic": "t"}


def ui_of(engine: Engine) -> HttpUIService:
    service = engine.services["ui"]
    assert isinstance(service, HttpUIService)
    return service


def another(config: Config, data: Path, token: str = "") -> Config:
    """The config of an engine beside `config`'s: its own data, ports and token."""
    return replace(
        config,
        enable_webdav=False,
        data_dir=str(data),
        redis=replace(config.redis, tcp_port=free_port()),
        ui=replace(config.ui, port=free_port(), token=token),
    )


async def test_a_second_engine_gets_the_built_app_and_serves_only_its_own_jobs(
    engine_config: Config, short_tmp: Path
) -> None:
    first = replace(engine_config, enable_webdav=False)
    async with Engine(first) as engine, httpx.AsyncClient(base_url=ui_url(engine)) as http:
        answer = await http.post("/api/jobs", json=JOB)
        assert answer.status_code == 201
        await wait_job_ended(engine, answer.json()["job_id"])
        assert len((await http.get("/api/jobs")).json()["jobs"]) == 1
        built = ui_of(engine)._app
    async with (
        Engine(another(engine_config, short_tmp / "second")) as engine,
        httpx.AsyncClient(base_url=ui_url(engine)) as http,
    ):
        assert ui_of(engine)._app is built
        assert (await http.get("/api/jobs")).json()["jobs"] == []
        answer = await http.post("/api/jobs", json=JOB)
        assert answer.status_code == 201
        ended = await wait_job_ended(engine, answer.json()["job_id"])
        detail = (await http.get(f"/api/jobs/{ended.job_id}")).json()
        assert detail["job"]["status"] == "done"
        assert "heroagent_jobs" in (await http.get("/metrics")).text


async def test_an_app_built_without_a_token_is_not_served_with_one(
    engine_config: Config, short_tmp: Path
) -> None:
    async with Engine(replace(engine_config, enable_webdav=False)) as engine:
        open_app = ui_of(engine)._app
    token = "s3cret-token"
    async with (
        Engine(another(engine_config, short_tmp / "second", token=token)) as engine,
        httpx.AsyncClient(base_url=ui_url(engine)) as http,
    ):
        assert ui_of(engine)._app is not open_app
        assert (await http.get("/api/jobs")).status_code == 401
        schema = (await http.get("/openapi.json")).json()
        assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
