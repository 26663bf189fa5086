"""10,000 jobs from a script: heroagent.Client, submit_many in batches, one wait for them all."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from tests.client.conftest import run_python
from tests.core.test_serve import serving

SCRIPT = """
import json, time
from heroagent import Client

TOTAL, BATCH = 10_000, 1_000
with Client() as client:
    started = time.perf_counter()
    ids = []
    for first in range(0, TOTAL, BATCH):
        batch = [f"!!core.echo message:{n}\\n" for n in range(first, first + BATCH)]
        ids += [job.job_id for job in client.submit_many(batch, topic="many")]
    submitted = time.perf_counter()
    jobs = client.wait_many(ids, timeout=120)
    ended = time.perf_counter()
print(json.dumps({
    "ids": len(set(ids)),
    "statuses": sorted({job.status for job in jobs}),
    "in_order": [job.job_id for job in jobs] == ids,
    "submit_s": submitted - started,
    "total_s": ended - started,
}))
"""


def test_ten_thousand_jobs_submitted_in_batches_and_waited_for() -> None:
    with tempfile.TemporaryDirectory(prefix="ha-") as directory:
        env = {"HEROAGENT_JOBS_WORKER_COUNT": "8"}
        with serving(Path(directory) / "data", env=env) as server:
            run = run_python(server, SCRIPT, timeout=180)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["ids"] == 10_000
    assert report["statuses"] == ["done"]
    assert report["in_order"]
    rate = 10_000 / report["submit_s"]
    print(f"submit_many: {rate:,.0f} jobs/s; all 10,000 done in {report['total_s']:.1f} s")
