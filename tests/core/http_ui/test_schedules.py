"""Schedules over the HTTP API: add, list, pause, resume, remove, refusals and the fires metric."""

from __future__ import annotations

import httpx

from tests.helpers import async_poll


async def test_schedules_over_http(client: httpx.AsyncClient) -> None:
    body = {"name": "hb", "params": "!!core.echo\n", "topic": "hb", "every": "1s"}
    added = await client.post("/api/schedules", json=body)
    assert added.status_code == 201, added.text
    assert added.json()["every"] == "1s"
    listed = (await client.get("/api/schedules")).json()
    assert [s["name"] for s in listed] == ["hb"]

    async def fired() -> bool:
        jobs = (await client.get("/api/jobs", params={"topic": "hb"})).json()["jobs"]
        return bool(jobs) and jobs[0]["schedule"] == "hb"

    await async_poll(fired, 10, "a job of the schedule")
    metrics = (await client.get("/metrics")).text
    assert 'heroagent_schedule_fires_total{schedule="hb"}' in metrics

    paused = await client.post("/api/schedules/hb/pause")
    assert paused.status_code == 200
    assert paused.json()["paused"] is True
    assert (await client.post("/api/schedules/hb/resume")).json()["paused"] is False
    assert (await client.delete("/api/schedules/hb")).status_code == 204
    assert (await client.delete("/api/schedules/hb")).status_code == 404
    assert (await client.post("/api/schedules/hb/pause")).status_code == 404
    bad = await client.post("/api/schedules", json={**body, "cron": "* * * * *"})
    assert bad.status_code == 422
    assert "exactly one of cron or every" in bad.json()["detail"]
