"""The inbox against the whole engine: a .hero file PUT over WebDAV runs as a real job."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import httpx

from core.config import Config
from core.engine import Engine
from core.jobs import JobStatus
from tests.helpers import async_wait_for


async def test_put_over_webdav_runs_a_real_job_and_writes_its_result(
    engine_config: Config,
) -> None:
    config = replace(engine_config, enable_ui=False)
    async with Engine(config) as engine:
        base = f"http://127.0.0.1:{config.webdav.port}"
        async with httpx.AsyncClient(base_url=base) as client:
            for collection in ("/inbox/", "/inbox/default/", "/inbox/default/demo/"):
                await client.request("MKCOL", collection)
            started = time.monotonic()
            put = await client.put(
                "/inbox/default/demo/hello.hero",
                content=b"!!fake.return_success message:'from the inbox'\n",
            )
            assert put.status_code in (201, 204)
            folder = config.webdav_root / "inbox" / "default" / "demo" / "submitted"
            results = await async_wait_for(
                lambda: list(folder.glob("hello.*.result.json")), 5, "the result file"
            )
            elapsed = time.monotonic() - started
        assert elapsed < 2.0
        outcome = json.loads(results[0].read_text())
        assert outcome["status"] == "done"
        job_id = int(results[0].name.split(".")[1])
        job = await engine.jobs.get_job(job_id)
        assert job.status is JobStatus.DONE
        assert (job.circle_id, job.topic) == ("default", "demo")
        assert "from the inbox" in job.result
        assert (folder / f"hello.{job_id}.hero").exists()
