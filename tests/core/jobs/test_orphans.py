"""A live worker hands back jobs the server shows as its own that it does not run."""

from __future__ import annotations

from core.engine import Engine
from core.jobs import keys
from core.jobs.queue import JobQueue
from tests.helpers import async_poll, one_slot_busy, wait_job_ended


async def test_a_job_the_server_shows_as_ours_but_we_do_not_run_goes_back(
    idle_engine: Engine,
) -> None:
    """What a failover leaves when the promoted replica lacked a worker's report."""
    engine = idle_engine
    async with one_slot_busy(engine, lease_seconds=0.6) as slot:
        dog, busy = slot.dog, slot.job
        orphan = await engine.jobs.create_job("t", "!!fake.return_success\n")
        # Handed to the dog on the server, with the reply never reaching it.
        leases = await JobQueue(dog.redis).fetch_many(dog.worker_id, 1)
        assert [lease.job.job_id for lease in leases] == [orphan.job_id]

        async def back_in_queue() -> bool:
            live = await dog.queue.get_live(orphan.job_id)
            return live is not None and live.status.value == "new"

        await async_poll(back_in_queue, 10, "the orphan to go back to its queue")
        assert dog.orphans_released == 1
        assert await dog.queue.held_ids(dog.worker_id) == {busy.job_id}
        assert busy.job_id in dog.running
        key = keys.job_key(busy.circle_id, busy.topic, busy.job_id)
        assert await dog.redis.hget(key, "worker") == dog.worker_id.encode()

        # Once the slot is free, the job runs and ends once.
        await engine.api.cancel(busy.job_id)
        assert (await wait_job_ended(engine, orphan.job_id)).status == "done"
        history = await engine.jobs.job_history(orphan.job_id)
        assert [v.status.value for v in history].count("done") == 1
