"""The JSON API over real HTTP: jobs, queues, services, JSON-RPC, metrics and the event stream."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from core import __version__
from core.api.wire import WIRE_FIELDS
from core.engine import Engine
from tests.core.http_ui.conftest import ui_url, wait_status
from tests.helpers import async_poll

OK = "!!fake.return_success message:hi\n"


async def submit(client: httpx.AsyncClient, params: str = OK, **extra: Any) -> dict[str, Any]:
    response = await client.post("/api/jobs", json={"params": params, "topic": "t", **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_health_services_and_openapi(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    services = {s["name"]: s["state"] for s in (await client.get("/api/services")).json()}
    assert services == {
        "redis": "running",
        "webdav": "disabled",
        "actors": "running",
        "jobs": "running",
        "relay": "running",
        "scheduler": "running",
        "watchdog": "running",
        "requests": "running",
        "inbox": "disabled",
        "ui": "running",
    }
    schema = (await client.get("/openapi.json")).json()
    assert {"/api/jobs", "/api/jobs/{job_id}", "/rpc", "/events", "/metrics"} <= set(
        schema["paths"]
    )


async def test_submit_then_job_with_its_history(client: httpx.AsyncClient) -> None:
    job = await submit(client, circle="c1", timeout=5)
    assert (job["status"], job["circle"], job["topic"], job["timeout"]) == ("new", "c1", "t", 5.0)
    assert "session_key" not in job
    await wait_status(client, job["job_id"])
    detail = (await client.get(f"/api/jobs/{job['job_id']}")).json()
    assert detail["job"]["status"] == "done"
    assert [v["status"] for v in detail["history"]] == ["new", "active", "done"]
    # The list's hand-built dicts carry exactly the fields the schema promises.
    listed = (await client.get("/api/jobs")).json()["jobs"][0]
    schema = (await client.get("/openapi.json")).json()["components"]["schemas"]["JobView"]
    assert set(listed) == set(schema["properties"]) == set(WIRE_FIELDS)


async def test_invalid_heroscript_is_422_naming_line_and_col(client: httpx.AsyncClient) -> None:
    text = "!!fake.return_success message:ok\n!!fake.return_succes message:x\n"
    response = await client.post("/api/jobs", json={"params": text, "topic": "t"})
    assert response.status_code == 422
    body = response.json()
    assert (body["line"], body["col"]) == (2, 1)
    assert "return_success" in body["problems"][0]["message"]
    assert body["detail"].startswith("line 2, col 1:")
    assert (await client.get("/api/jobs")).json()["jobs"] == []
    # Malformed bodies are 422 too, with the same shape.
    response = await client.post("/api/jobs", json={"params": OK, "topic": "no spaces"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("body.topic")


async def test_openrpc_job_and_bad_json(client: httpx.AsyncClient) -> None:
    call = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "fake.return_success", "params": {}})
    job = await submit(client, call, params_type="openrpc")
    assert (await wait_status(client, job["job_id"]))["status"] == "done"
    response = await client.post(
        "/api/jobs", json={"params": "{nope", "topic": "t", "params_type": "openrpc"}
    )
    assert response.status_code == 422
    assert "not JSON" in response.json()["detail"]


async def test_list_filters_and_pages(client: httpx.AsyncClient) -> None:
    ids = [(await submit(client, topic=f"q{i % 2}"))["job_id"] for i in range(5)]
    for job_id in ids:
        await wait_status(client, job_id)
    first = (await client.get("/api/jobs", params={"limit": 2})).json()
    assert [j["job_id"] for j in first["jobs"]] == ids[:-3:-1]
    second = (
        await client.get("/api/jobs", params={"limit": 2, "before_id": first["next_before_id"]})
    ).json()
    assert [j["job_id"] for j in second["jobs"]] == ids[-3:-5:-1]
    only_q0 = (await client.get("/api/jobs", params={"topic": "q0"})).json()
    assert [j["job_id"] for j in only_q0["jobs"]] == ids[::-2]
    assert only_q0["next_before_id"] is None
    assert (await client.get("/api/jobs", params={"status": "error"})).json()["jobs"] == []
    assert (await client.get("/api/jobs", params={"limit": 0})).status_code == 422


async def test_cancel_requeue_and_not_found(client: httpx.AsyncClient, ui_engine: Engine) -> None:
    await ui_engine.jobs.pause_queue("default", "slow")
    job = await submit(client, topic="slow")
    cancelled = await client.post(f"/api/jobs/{job['job_id']}/cancel")
    assert cancelled.status_code == 200
    assert (cancelled.json()["status"], cancelled.json()["error"]) == ("error", "cancelled")
    again = await client.post(f"/api/jobs/{job['job_id']}/cancel")
    assert again.status_code == 409
    assert "already ended" in again.json()["detail"]
    requeued = await client.post(f"/api/jobs/{job['job_id']}/requeue")
    assert requeued.json()["status"] == "new"
    assert (await client.post(f"/api/jobs/{job['job_id']}/requeue")).status_code == 409
    assert (await client.get("/api/jobs/999999")).status_code == 404
    assert (await client.post("/api/jobs/999999/cancel")).status_code == 404
    assert (await client.get("/api/jobs/0")).status_code == 422


async def test_queues_with_depth_and_rate(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/queues/default/held/pause")).status_code == 204
    await submit(client, topic="held")
    done = await submit(client, topic="fast")
    await wait_status(client, done["job_id"])

    async def queues_once_rated() -> dict[str, Any]:
        # The rate counts the end's event, told a moment after the end reads durable.
        rows = (await client.get("/api/queues")).json()
        queues = {f"{q['circle']}/{q['topic']}": q for q in rows}
        return queues if queues["default/fast"]["rate_per_second"] > 0 else {}

    queues = await async_poll(queues_once_rated, what="a rate for default/fast")
    assert (queues["default/held"]["waiting"], queues["default/held"]["paused"]) == (1, True)
    assert queues["default/fast"]["done"] == 1
    assert (await client.post("/api/queues/default/held/resume")).status_code == 204


async def test_rpc_and_discover(client: httpx.AsyncClient) -> None:
    answer = (
        await client.post("/rpc", json={"jsonrpc": "2.0", "id": 7, "method": "rpc.discover"})
    ).json()
    assert answer["id"] == 7
    assert "fake.return_success" in {m["name"] for m in answer["result"]["methods"]}
    error = (
        await client.post("/rpc", content=b"{nope", headers={"content-type": "application/json"})
    ).json()
    assert error["error"]["code"] == -32700
    note = await client.post("/rpc", json={"jsonrpc": "2.0", "method": "rpc.discover"})
    assert note.status_code == 204


async def test_validate_and_actions(client: httpx.AsyncClient) -> None:
    problems = (await client.post("/api/validate", json={"text": "!!fake.nope x:1\n"})).json()[
        "problems"
    ]
    assert problems[0]["line"] == 1
    assert (await client.post("/api/validate", json={"text": OK})).json() == {"problems": []}
    actions = {a["method"]: a for a in (await client.get("/api/actions")).json()}
    assert "fake.sleep" in actions


async def test_metrics_in_prometheus_text_format(client: httpx.AsyncClient) -> None:
    job = await submit(client)
    await wait_status(client, job["job_id"])
    response = await client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert 'heroagent_jobs{circle="default",topic="t",status="done"} 1' in text
    assert 'heroagent_queue_depth{circle="default",topic="t"} 0' in text
    assert 'heroagent_jobs_ended_total{status="done"} 1' in text
    assert "# TYPE heroagent_job_latency_seconds histogram" in text
    assert 'heroagent_job_latency_seconds_bucket{le="+Inf"} 1' in text
    assert "heroagent_job_latency_seconds_count 1" in text
    assert 'heroagent_service_up{service="ui",state="running"} 1' in text


async def test_metrics_count_retries_and_dead_letters(client: httpx.AsyncClient) -> None:
    fails = "!!fake.return_error message:'mailbox full'\n"
    # Two attempts: one retry, then a dead letter. A cancel and a success count for neither.
    dead = await submit(client, fails, retries=1, backoff_base=0.05)
    cancelled = await submit(client, OK, delay=3600)
    assert (await client.post(f"/api/jobs/{cancelled['job_id']}/cancel")).status_code == 200
    await wait_status(client, dead["job_id"])
    await wait_status(client, (await submit(client))["job_id"])
    text = (await client.get("/metrics")).text
    assert "# TYPE heroagent_job_retries_total counter" in text
    assert "\nheroagent_job_retries_total 1\n" in text
    assert "# TYPE heroagent_dead_letters_total counter" in text
    assert "\nheroagent_dead_letters_total 1\n" in text


async def test_workers_lists_the_engines_own_watchdog_as_alive(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/workers")
    assert response.status_code == 200
    (own,) = response.json()
    assert (own["state"], own["version"]) == ("alive", __version__)
    assert own["host"] == socket.gethostname()
    assert own["pid"] == os.getpid()
    assert own["slots"] > 0
    assert own["running"] == 0
    text = (await client.get("/metrics")).text
    assert "# TYPE heroagent_workers gauge" in text
    assert 'heroagent_workers{state="alive"} 1\n' in text
    assert 'heroagent_workers{state="lost"} 0\n' in text


async def read_events(
    lines: AsyncIterator[str], until: Any, seconds: float = 10
) -> list[tuple[str, Any]]:
    """SSE messages as (event, data) until `until(messages)` is true."""
    messages: list[tuple[str, Any]] = []
    name = ""
    async with asyncio.timeout(seconds):
        async for line in lines:
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                messages.append((name, json.loads(line[6:])))
                if until(messages):
                    return messages
    return messages


async def test_sse_client_receives_the_events_of_a_submitted_job(client: httpx.AsyncClient) -> None:
    async with client.stream("GET", "/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()
        ready = await read_events(lines, lambda ms: len(ms) >= 1)
        assert ready[0][0] == "ready"
        assert {s["name"] for s in ready[0][1]["services"]} >= {"jobs", "ui"}
        job = await submit(client)

        def ended(ms: list[tuple[str, Any]]) -> bool:
            return any(
                n == "job" and d["job_id"] == job["job_id"] and d["status"] == "done" for n, d in ms
            )

        messages = await read_events(lines, ended)
    statuses = [d["status"] for n, d in messages if n == "job" and d["job_id"] == job["job_id"]]
    # A stream coalesces a job's states it has not sent yet: in order, ending with done.
    assert statuses[-1] == "done"
    assert statuses == [s for s in ("new", "active", "done") if s in statuses]


async def test_stopping_the_engine_ends_open_streams(engine_config: Any) -> None:
    from dataclasses import replace

    engine = Engine(replace(engine_config, enable_webdav=False))
    await engine.start()
    try:
        async with (
            httpx.AsyncClient(base_url=ui_url(engine), timeout=10) as http,
            http.stream("GET", "/events") as stream,
        ):
            lines = stream.aiter_lines()
            await read_events(lines, lambda ms: len(ms) >= 1)
            started = time.monotonic()
            await engine.stop()
            assert time.monotonic() - started < 2
            # The stream ended cleanly: reading the rest returns, it does not hang.
            async with asyncio.timeout(2):
                async for _ in lines:
                    pass
    finally:
        await engine.stop()


async def test_batch_as_json_and_as_ndjson(client: httpx.AsyncClient) -> None:
    items = [{"params": f"!!core.echo message:{i}\n", "topic": "batch"} for i in range(3)]
    response = await client.post("/api/jobs/batch", json=items)
    assert response.status_code == 201, response.text
    made = response.json()
    assert [j["params"] for j in made] == [i["params"] for i in items]
    assert set(made[0]) == set(WIRE_FIELDS)
    ndjson = "\n".join(json.dumps(i) for i in items) + "\n\n"
    response = await client.post(
        "/api/jobs/batch", content=ndjson, headers={"Content-Type": "application/x-ndjson"}
    )
    assert response.status_code == 201, response.text
    assert [j["topic"] for j in response.json()] == ["batch"] * 3
    for job in [*made, *response.json()]:
        assert (await wait_status(client, job["job_id"]))["status"] == "done"


async def test_a_bad_batch_item_is_422_naming_its_index_and_creates_none(
    client: httpx.AsyncClient,
) -> None:
    good = {"params": "!!core.echo\n", "topic": "batch"}
    response = await client.post("/api/jobs/batch", json=[good, good, {"params": "!!a.b.c x:1\n"}])
    assert response.status_code == 422
    body = response.json()
    assert body["detail"].startswith("item 2: line 1, col 3:")
    assert (body["index"], body["line"], body["col"]) == (2, 1, 3)
    response = await client.post("/api/jobs/batch", json=[good, {"params": 5}])
    assert response.status_code == 422
    assert (response.json()["index"], response.json()["detail"][:14]) == (1, "item 1: params")
    line_2 = json.dumps(good) + "\n" + json.dumps({**good, "topic": "no spaces"})
    response = await client.post(
        "/api/jobs/batch", content=line_2, headers={"Content-Type": "application/x-ndjson"}
    )
    assert (response.status_code, response.json()["index"]) == (422, 1)
    assert (await client.get("/api/jobs")).json()["jobs"] == []

    not_json = await client.post(
        "/api/jobs/batch", content=b"[{", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 400
    assert (await client.post("/api/jobs/batch", json={"params": "x"})).status_code == 422
    # The batch is no job id: other methods are 405, not a GET of a bad id.
    listed = await client.get("/api/jobs/batch")
    assert (listed.status_code, listed.headers["allow"]) == (405, "POST")
    too_many = await client.post("/api/jobs/batch", json=[good] * 1001)
    assert too_many.status_code == 422
    assert "at most 1000 jobs" in too_many.json()["detail"]


async def test_delayed_retried_and_dead_jobs_over_http(client: httpx.AsyncClient) -> None:
    later = await submit(client, topic="timed", delay=0.2)
    assert later["status"] == "scheduled"
    done = await wait_status(client, later["job_id"])
    assert done["status"] == "done"
    assert done["time_start"] >= later["run_at"]
    failing = await submit(
        client, "!!fake.return_error message:boom\n", topic="timed", retries=1, backoff_base=0.05
    )
    await wait_status(client, failing["job_id"])
    detail = (await client.get(f"/api/jobs/{failing['job_id']}")).json()
    steps = [v["status"] for v in detail["history"]]
    assert steps == ["new", "active", "scheduled", "active", "error"]
    assert detail["history"][2]["error_kind"] == "failed"
    dead = (await client.get("/api/dead", params={"topic": "timed"})).json()
    assert [j["job_id"] for j in dead["jobs"]] == [failing["job_id"]]
    # A done job listed by mistake is left alone.
    ids = [failing["job_id"], later["job_id"]]
    back = (await client.post("/api/dead/requeue", json={"ids": ids})).json()
    assert [j["job_id"] for j in back] == [failing["job_id"]]
    await wait_status(client, failing["job_id"])
    again = await client.post("/api/dead/requeue", json={"all": True, "topic": "timed"})
    assert [j["job_id"] for j in again.json()] == [failing["job_id"]]
    bad = await client.post("/api/jobs", json={"params": OK, "backoff": "sometimes"})
    assert bad.status_code == 422


async def test_queue_limits_over_http(client: httpx.AsyncClient) -> None:
    url = "/api/queues/default/limited/limits"
    assert (await client.get(url)).json() == {
        **{"circle": "default", "topic": "limited", "max_active": 0, "rate": ""},
        **{"active": 0, "held": ""},
    }
    assert (await client.post("/api/queues/default/limited/pause")).status_code == 204
    put = await client.put(url, json={"max_active": 2, "rate": "20/s"})
    assert put.status_code == 200
    assert (put.json()["max_active"], put.json()["rate"]) == (2, "20/s")
    assert (await client.get(url)).json()["max_active"] == 2
    bad = await client.put(url, json={"rate": "lots"})
    assert bad.status_code == 422
    assert "is not of the form" in bad.json()["detail"]
    assert (await client.put(url, json={"max_active": -1})).status_code == 422
    assert (await client.put(url, json={"burst": 1})).status_code == 422
    job = await submit(client, topic="limited", priority=9)
    assert job["priority"] == 9
    queues = {f"{q['circle']}/{q['topic']}": q for q in (await client.get("/api/queues")).json()}
    assert (queues["default/limited"]["max_active"], queues["default/limited"]["rate"]) == (
        2,
        "20/s",
    )
    assert (await client.put(url, json={})).json()["max_active"] == 0
    refused = await client.post("/api/jobs", json={"params": "!!core.echo\n", "priority": 10})
    assert refused.status_code == 422
    assert (await client.post("/api/queues/default/limited/resume")).status_code == 204
