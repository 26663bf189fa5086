"""The client side of the failover test, run on the engine's host: submit, wait, report.

`python -m tests.netlab.failover_driver OUT COUNT SECONDS` submits COUNT jobs through
the Sentinels named in HEROAGENT_REDIS_* (the test process cannot reach lab addresses),
prints `submitted` once the engine acknowledged them all, waits for every one to end
(across the failover), and writes each job's ended versions from OurDB to OUT as JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from core.config import load_config
from core.redis_server.backoff import Backoff
from heroagent import AsyncClient, EngineUnreachable

BATCH = 1_000
JOB = "!!fake.sleep seconds:0.05\n"


async def drive(out: Path, count: int, seconds: float) -> None:
    config = load_config(Path(os.devnull)).config
    async with AsyncClient.from_config(config, wait_seconds=20) as client:
        ids: list[int] = []
        for start in range(0, count, BATCH):
            jobs = await client.submit_many([JOB] * min(BATCH, count - start), topic="failover")
            ids += [job.job_id for job in jobs]
        print("submitted", len(ids), flush=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        backoff = Backoff()
        while True:
            try:
                await client.wait_many(ids, timeout=max(1.0, deadline - loop.time()))
                break
            except EngineUnreachable as exc:
                # The engine itself was between servers when asked: ask again.
                if loop.time() > deadline:
                    raise
                print("waiting again:", exc, flush=True)
                await backoff.wait()
        ended = {}
        for job_id in ids:
            versions = await client.history(job_id)
            ended[job_id] = [
                [v.status, v.worker] for v in versions if v.status in ("done", "error")
            ]
        out.write_text(json.dumps(ended))
        print("reported", len(ended), flush=True)


if __name__ == "__main__":
    asyncio.run(drive(Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
