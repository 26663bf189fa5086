"""POST /api/jobs/purge: a confirmed body filter deletes ended jobs; /metrics counts them."""

from __future__ import annotations

import time

import httpx

from core.engine import Engine
from core.jobs.model import JobStatus
from tests.core.http_ui.conftest import ui_url
from tests.core.jobs.seed import seed_ended


async def test_purge_over_http(ui_engine: Engine) -> None:
    old = time.time() - 3600
    done = await seed_ended(ui_engine.jobs, 40, ended_at=old, topic="purged")
    dead = await seed_ended(ui_engine.jobs, 5, status=JobStatus.ERROR, topic="purged")
    async with httpx.AsyncClient(base_url=ui_url(ui_engine), timeout=30) as client:
        unconfirmed = await client.post("/api/jobs/purge", json={"status": "done"})
        assert unconfirmed.status_code == 422
        refused = await client.post("/api/jobs/purge", json={"confirm": False})
        assert refused.status_code == 422
        live = await client.post("/api/jobs/purge", json={"confirm": True, "status": "new"})
        assert live.status_code == 422
        asked = await client.get("/api/jobs/purge")
        assert (asked.status_code, asked.headers["allow"]) == (405, "POST")

        body = {"confirm": True, "status": "done", "topic": "purged", "before": old + 1}
        purged = await client.post("/api/jobs/purge", json={**body, "keep": 10})
        assert purged.json() == {"purged": 30}
        assert (await client.get(f"/api/jobs/{done[0]}")).status_code == 404
        listed = (await client.get("/api/jobs", params={"topic": "purged"})).json()["jobs"]
        assert sorted(j["job_id"] for j in listed) == sorted(done[-10:] + dead)
        letters = await client.post("/api/jobs/purge", json={"confirm": True, "dead": True})
        assert letters.json() == {"purged": 5}
        metrics = (await client.get("/metrics")).text
        assert "# TYPE heroagent_jobs_purged_total counter" in metrics
        assert "\nheroagent_jobs_purged_total 35\n" in metrics
        schema = (await client.get("/openapi.json")).json()
        assert "confirm" in schema["components"]["schemas"]["PurgeRequest"]["required"]
