"""Workers on other hosts: they share the load, stream logs, obey cancels and survive a cut."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from heroagent import AsyncClient, JobView
from tests.helpers import async_poll
from tests.netlab.hosts import LOOPBACK_UI, LabEngine, LabWorker, workers_seen
from tests.netlab.lab import Lab, cpu_seconds

LEASE = 1.0


@dataclass
class Cluster:
    engine: LabEngine
    client: AsyncClient
    workers: list[LabWorker]


@pytest.fixture
async def cluster(lab: Lab, lab_dir: Path) -> AsyncIterator[Cluster]:
    """The engine on its host, one worker on each worker host, given only the URL."""
    engine = LabEngine(lab["eng"], lab_dir / "eng")
    workers = [LabWorker(lab[tag], engine.url, lab_dir / tag, lease=LEASE) for tag in ("w1", "w2")]
    client = engine.client()
    try:
        yield Cluster(engine, client, workers)
    finally:
        await client.aclose()
        # Now, while their data dirs still exist (lab_dir is removed before `lab` ends).
        lab.stop_processes()


async def ends(client: AsyncClient, job_id: int) -> list[JobView]:
    return [v for v in await client.history(job_id) if v.status in ("done", "error")]


async def test_500_jobs_run_on_both_hosts_logs_reach_the_engine_and_cancel_stops(
    cluster: Cluster,
) -> None:
    client, (w1, w2) = cluster.client, cluster.workers
    assert "--redis-url" in " ".join(w1.process.args)  # type: ignore[arg-type]
    jobs = await client.submit_many(["!!fake.sleep seconds:0.01\n"] * 500, topic="load")
    await client.wait_many([j.job_id for j in jobs], timeout=60)
    ran_on = {"w1": 0, "w2": 0}
    for job in jobs:
        done = await ends(client, job.job_id)
        assert [v.status for v in done] == ["done"], f"job {job.job_id}: {done}"
        ran_on["w1" if w1.owns(done[0].worker) else "w2"] += 1
        assert w1.owns(done[0].worker) or w2.owns(done[0].worker), done[0].worker
    assert ran_on["w1"] > 0
    assert ran_on["w2"] > 0, ran_on

    # This one from the CLI on the engine's host, as a person logged in there would.
    params = cluster.engine.data.parent / "echo.hero"
    params.write_text("!!core.echo message:hello-from-a-worker-host\n")
    out = await asyncio.to_thread(cluster.engine.cli, "submit", "--log", "--json", str(params))
    ended = await client.wait(json.loads(out)["job_id"], timeout=20)
    assert ended.status == "done"
    assert "hello-from-a-worker-host" in ended.log_lines
    assert w1.owns(ended.worker) or w2.owns(ended.worker)

    slow = await client.submit("!!fake.sleep seconds:30\n", topic="slow")

    async def running() -> JobView | None:
        view = await client.get(slow.job_id)
        return view if view.status == "active" else None

    active = await async_poll(running, 20, "the slow job to start on a worker host")
    assert active is not None
    worker = w1 if w1.owns(active.worker) else w2
    assert (await client.cancel(slow.job_id)).error == "cancelled"
    # From the engine's answer: the job has ended in OurDB; now the worker host must stop
    # it (the request's own round trip is the engine's business, not the worker's).
    cancelled_at = time.monotonic()
    stopped = f"job {slow.job_id} cancelled by the engine; stopped it"

    async def stopped_there() -> bool:
        return stopped in worker.output

    await async_poll(stopped_there, 2.0, "the worker host to stop the cancelled job")
    assert time.monotonic() - cancelled_at < 2.0


@pytest.mark.parametrize(
    ("fault", "outage"),
    [
        pytest.param("cut", 3 * LEASE, id="link-down-3-leases"),
        # Packets vanish with the link up: timeouts, not fast errors, end each attempt.
        pytest.param("blackhole", 3 * LEASE, id="blackhole-3-leases"),
        # Long enough for every retry loop to go round many times: the CPU check bites.
        pytest.param("cut", 20 * LEASE, id="link-down-20-leases", marks=pytest.mark.slow),
        pytest.param("blackhole", 20 * LEASE, id="blackhole-20-leases", marks=pytest.mark.slow),
    ],
)
async def test_a_cut_worker_host_loses_its_jobs_is_fenced_and_rejoins(
    cluster: Cluster, lab: Lab, fault: str, outage: float
) -> None:
    client, (w1, w2) = cluster.client, cluster.workers
    # Long enough that w1 is still running some when it is cut, short enough to be quick.
    jobs = await client.submit_many(["!!fake.sleep seconds:1.5\n"] * 30, topic="cut")
    ids = [j.job_id for j in jobs]

    async def w1_running() -> bool:
        return any(v.status == "active" and w1.owns(v.worker) for v in await client.get_many(ids))

    await async_poll(w1_running, 20, "w1 to run some of the jobs")
    held = [
        v.job_id for v in await client.get_many(ids) if v.status == "active" and w1.owns(v.worker)
    ]
    cpu_before = cpu_seconds(w1.pid)
    if fault == "cut":
        lab["w1"].cut()
    else:
        lab["w1"].blackhole()
    # The fault itself: the link stays down for a set time, several leases.
    await asyncio.sleep(outage)
    cpu_during = cpu_seconds(w1.pid) - cpu_before
    lab["w1"].restore()

    await client.wait_many(ids, timeout=60)
    moved = 0
    for job_id in ids:
        done = await ends(client, job_id)
        assert [v.status for v in done] == ["done"], f"job {job_id} ended {done}"
        if job_id in held and w2.owns(done[0].worker):
            moved += 1
    assert moved > 0, "no job w1 held was run again on w2"
    # A worker that retries without pause burns a core; one that backs off, almost nothing.
    assert cpu_during < 0.25 * outage, f"w1 used {cpu_during:.2f} s CPU in {outage} s cut off"
    assert w1.process.poll() is None

    # Back on the network, w1 takes new work again.
    again = await client.submit_many(["!!fake.sleep seconds:0.2\n"] * 40, topic="after")
    await client.wait_many([j.job_id for j in again], timeout=60)
    after = [v.worker for v in await client.get_many([j.job_id for j in again])]
    assert any(w1.owns(worker) for worker in after), "w1 did not rejoin"
    assert "outcome dropped" in w1.output or moved == 0


async def test_a_cut_worker_host_shows_lost_on_the_engine_then_alive_again(
    lab: Lab, lab_dir: Path
) -> None:
    engine = LabEngine(lab["eng"], lab_dir / "eng", env=LOOPBACK_UI)
    worker = LabWorker(lab["w1"], engine.url, lab_dir / "w1", lease=LEASE)
    try:

        async def state_is(wanted: str) -> bool:
            seen = await asyncio.to_thread(workers_seen, engine)
            return seen.get(worker.pid) == wanted

        await async_poll(lambda: state_is("alive"), 20, "the worker to show alive")
        lab["w1"].cut()
        await async_poll(lambda: state_is("lost"), 20, "the cut worker to show lost")
        lab["w1"].restore()
        await async_poll(lambda: state_is("alive"), 30, "the worker to show alive again")
        assert worker.process.poll() is None
    finally:
        lab.stop_processes()
