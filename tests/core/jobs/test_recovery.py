"""Recovery strands nothing, and a damaged record costs only its own row.

Real files and a real valkey: a first engine runs jobs and stops; the test then does to
the files what a crash would (a torn OurDB tail, a creation the index never saw, a
flipped byte), and a second engine on the same files and server must cope.
"""

from __future__ import annotations

import os
from dataclasses import replace

import httpx
import pytest

from core.api import JobRefused
from core.config import Config
from core.engine import Engine
from core.jobs import Job
from core.jobs.index import JobIndex
from core.ourdb import OurDB
from core.ourdb.format import HEADER_LEN
from tests.helpers import ValkeyProcess, wait_job_ended, wait_jobs_ended


@pytest.fixture
def config(engine_config: Config, valkey: ValkeyProcess) -> Config:
    """One local slot, on a valkey that outlives the engines (as a shared server does)."""
    return replace(
        engine_config,
        enable_webdav=False,
        enable_ui=False,
        redis=replace(engine_config.redis, url=valkey.url),
        jobs=replace(engine_config.jobs, worker_count=1, lease_seconds=1.0),
    )


async def run_jobs(config: Config, count: int) -> list[int]:
    """Start an engine, run `count` jobs to done, stop it cleanly."""
    async with Engine(config) as engine:
        jobs = [
            await engine.api.submit(f"!!fake.return_success message:n{i}\n", topic="t")
            for i in range(count)
        ]
        ids = [job.job_id for job in jobs]
        await wait_jobs_ended(engine, ids)
    return ids


async def test_a_done_version_lost_to_a_torn_tail_runs_the_job_again(config: Config) -> None:
    (job_id,) = await run_jobs(config, 1)
    with OurDB(config.ourdb_dir) as db:
        loc = db.location(job_id)
        done = Job.from_json(db.get(job_id), job_id)
        data_file = config.ourdb_dir / f"{loc.file_nr}.db"
        # The done version is the last record written: the tail a crash can tear.
        assert os.path.getsize(data_file) == loc.position + HEADER_LEN + len(db.get(job_id))
    assert done.status == "done"
    # The header survives (so OurDB finds the older version), the payload is cut short.
    os.truncate(data_file, loc.position + HEADER_LEN + 2)
    with OurDB(config.ourdb_dir, readonly=True) as db:
        # What a crash leaves: OurDB will go back to the active version at its next open,
        # while the index still says done.
        assert any(f"ids {job_id} would be reverted" in w for w in db.warnings), db.warnings
    async with Engine(config) as engine:
        again = await wait_job_ended(engine, job_id)
        assert again.status == "done"
        statuses = [v.status for v in await engine.api.history(job_id)]
        # new, active (the torn done is gone), back to new at the restart, then run again.
        assert statuses == ["new", "active", "new", "active", "done"]
        listed = await engine.api.jobs()
        assert [(v.job_id, v.status) for v in listed] == [(job_id, "done")]


async def test_a_creation_the_index_and_redis_never_saw_is_run(config: Config) -> None:
    (first,) = await run_jobs(config, 1)
    lost = Job(0, topic="t", params="!!fake.return_success message:lost\n")
    later = Job(0, topic="t", params="!!fake.return_success message:later\n")
    # The engine died after OurDB stored a creation, before the index or Redis heard of
    # it; a later creation (id above it) was indexed, so the gap is below the highest id.
    with OurDB(config.ourdb_dir) as db:
        lost_id = db.set(lost.to_json())
        later_id = db.set(later.to_json())
    index = JobIndex(config.data_path / "jobs-index.sqlite")
    try:
        index.upsert([replace(later, job_id=later_id)])
        assert index.max_id() == later_id > lost_id > first
    finally:
        index.close()
    async with Engine(config) as engine:
        await wait_jobs_ended(engine, [lost_id, later_id])
        for job_id in (lost_id, later_id):
            assert (await engine.api.job(job_id)).status == "done"
        listed = [v.job_id for v in await engine.api.jobs()]
        assert listed == [later_id, lost_id, first]


async def test_damaged_records_show_as_damaged_rows(config: Config) -> None:
    ids = await run_jobs(config, 3)
    flipped, garbled, fine = ids
    with OurDB(config.ourdb_dir) as db:
        loc = db.location(flipped)
        db.set(b"\xff not a job", garbled)
    data_file = config.ourdb_dir / f"{loc.file_nr}.db"
    with data_file.open("r+b") as handle:
        handle.seek(loc.position + HEADER_LEN + 2)
        byte = handle.read(1)
        handle.seek(loc.position + HEADER_LEN + 2)
        handle.write(bytes([byte[0] ^ 0xFF]))
    async with Engine(config) as engine:
        rows = {v.job_id: v for v in await engine.api.jobs()}
        assert set(rows) == set(ids)
        assert rows[fine].status == "done"
        for job_id in (flipped, garbled):
            assert rows[job_id].status == "error"
            assert rows[job_id].error.startswith("damaged record: ")
            # Nothing made up: what cannot be read is left empty.
            assert (rows[job_id].circle, rows[job_id].topic, rows[job_id].params) == ("", "", "")
        assert "CRC mismatch" in rows[flipped].error
        assert "not a job" in rows[garbled].error
        assert (await engine.api.job(flipped)).error == rows[flipped].error
        # The walk back stops at a damaged version; an intact one before it still shows.
        assert [v.status for v in await engine.api.history(flipped)] == ["error"]
        history = await engine.api.history(garbled)
        assert [v.status for v in history] == ["new", "active", "done", "error"]
        assert history[-1].error.startswith("damaged record: not a job")
        with pytest.raises(JobRefused, match="cannot be requeued"):
            await engine.api.requeue(flipped)
        assert engine.history is not None
        assert engine.jobs.damaged_reads >= 5
        assert f"{engine.jobs.damaged_reads} damaged records read" == engine.history.detail()
        assert engine.api.health().damaged_reads == engine.jobs.damaged_reads


async def test_damaged_reads_show_in_services_metrics_and_the_page_renders(
    config: Config,
) -> None:
    (garbled,) = await run_jobs(config, 1)
    with OurDB(config.ourdb_dir) as db:
        db.set(b"\xff not a job", garbled)
    async with Engine(replace(config, enable_ui=True)) as engine:
        base = engine.services["ui"].address().rstrip("/")
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            page = await http.get("/api/jobs")
            assert page.status_code == 200
            (row,) = page.json()["jobs"]
            assert row["error"].startswith("damaged record: ")
            services = {s["name"]: s for s in (await http.get("/api/services")).json()}
            assert "damaged records read" in services["jobs"]["detail"]
            metrics = (await http.get("/metrics")).text
    reads = [line for line in metrics.splitlines() if line.startswith("heroagent_damaged_reads")]
    assert reads, metrics
    assert int(reads[0].split()[-1]) >= 1
