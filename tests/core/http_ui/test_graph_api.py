"""Unique jobs and job graphs over the JSON API: real HTTP, real engine."""

from __future__ import annotations

import httpx

from tests.core.http_ui.conftest import wait_status

GRAPH = """
!!job.define name:a topic:web
!!fake.return_success

!!job.define name:b topic:web after:a
!!fake.return_error

!!job.define name:c topic:web after:b
!!fake.return_success
"""


async def test_graph_runs_and_a_failure_cascades(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/jobs/graph", json={"text": GRAPH})
    assert response.status_code == 201, response.text
    a, b, c = response.json()
    assert (b["status"], b["depends_on"], b["wait_for"]) == (
        "scheduled",
        [a["job_id"]],
        [a["job_id"]],
    )
    ended = await wait_status(client, c["job_id"])
    assert (ended["status"], ended["error_kind"]) == ("error", "dependency_failed")
    assert (await wait_status(client, a["job_id"]))["status"] == "done"


async def test_a_cycle_is_422_naming_the_jobs(client: httpx.AsyncClient) -> None:
    text = "!!job.define name:x after:y\n!!fake.return_success\n\n"
    text += "!!job.define name:y after:x\n!!fake.return_success\n"
    response = await client.post("/api/jobs/graph", json={"text": text})
    assert response.status_code == 422
    assert "cycle: x -> y -> x" in response.json()["detail"]
    assert (await client.get("/api/jobs/graph")).status_code == 405
    assert (await client.get("/api/jobs")).json()["jobs"] == []


async def test_unique_key_and_depends_on_through_submit(client: httpx.AsyncClient) -> None:
    body = {"params": "!!fake.sleep seconds:0.2\n", "topic": "web", "unique_key": "nightly"}
    first = (await client.post("/api/jobs", json=body)).json()
    again = (await client.post("/api/jobs", json=body)).json()
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    assert again["job_id"] == first["job_id"]
    child = {"params": "!!fake.return_success\n", "depends_on": [first["job_id"]]}
    made = (await client.post("/api/jobs", json=child)).json()
    assert made["wait_for"] == [first["job_id"]]
    assert (await wait_status(client, made["job_id"]))["status"] == "done"
    bad = await client.post("/api/jobs", json={**body, "unique_key": "no spaces"})
    assert bad.status_code == 422
    unknown = await client.post("/api/jobs", json={**child, "depends_on": [987654]})
    assert unknown.status_code == 422
    assert "no job with id 987654" in unknown.json()["detail"]
