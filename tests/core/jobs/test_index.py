"""The job index: filters, paging and the trigger-kept counts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from core.api import JobFilter
from core.jobs.index import JobIndex
from core.jobs.model import Job, JobStatus


def job(job_id: int, topic: str = "a", status: JobStatus = JobStatus.NEW) -> Job:
    return Job(job_id=job_id, topic=topic, params=f"!!x.y n:{job_id}", status=status,
               time_scheduled=float(job_id))  # fmt: skip


def test_counts_follow_status_changes_and_survive_reopen(tmp_path: Path) -> None:
    index = JobIndex(tmp_path / "i.sqlite")
    index.upsert([job(1), job(2), job(3, "b")])
    index.upsert([replace(job(1), status=JobStatus.DONE), replace(job(2), status=JobStatus.ACTIVE)])
    index.upsert([replace(job(2), status=JobStatus.ERROR)])
    expected = {
        ("default", "a", "new"): 0,
        ("default", "a", "active"): 0,
        ("default", "a", "done"): 1,
        ("default", "a", "error"): 1,
        ("default", "b", "new"): 1,
    }
    counts = index.counts()
    assert {k: counts.get(k, 0) for k in expected} == expected
    index.close()
    again = JobIndex(tmp_path / "i.sqlite")
    assert again.counts() == counts
    again.close()


def test_query_filters_and_pages(tmp_path: Path) -> None:
    index = JobIndex(tmp_path / "i.sqlite")
    index.upsert([job(i, "a" if i % 2 else "b") for i in range(1, 11)])
    assert index.query(JobFilter(topic="a"), limit=2) == [9, 7]
    assert index.query(JobFilter(topic="a"), limit=10, before_id=7) == [5, 3, 1]
    assert index.query(JobFilter(text="n:10"), limit=5) == [10]
    assert index.query(JobFilter(since=3, until=5), limit=5) == [4, 3]
    assert index.query(JobFilter(text="100%_"), limit=5) == []
    assert index.ids_with_status(["new"]) == list(range(1, 11))
    assert index.max_id() == 10
    index.close()


def test_purged_ids_stay_known_and_ended_ids_narrow(tmp_path: Path) -> None:
    index = JobIndex(tmp_path / "i.sqlite")
    ended = [replace(job(i), status=JobStatus.DONE, time_end=float(i)) for i in range(1, 9)]
    index.upsert([*ended, replace(job(9), status=JobStatus.ERROR, time_end=9.0), job(10)])
    assert index.ended_ids(JobFilter(), limit=100) == list(range(1, 10))
    assert index.ended_ids(JobFilter(status="done"), ended_before=4.0, limit=100) == [1, 2, 3]
    assert index.ended_ids(JobFilter(status="done"), keep=5, limit=100) == [1, 2, 3]
    assert index.ended_ids(JobFilter(status="done"), limit=2, after_id=2) == [3, 4]
    index.delete([8, 9, 10])
    # Gone ids are neither missing (reconcile would look for them) nor free (max_id).
    assert index.missing_ids(10) == []
    assert index.max_id() == 10
    assert index.counts()[("default", "a", "done")] == 7
    index.close()
    again = JobIndex(tmp_path / "i.sqlite")
    assert (again.missing_ids(11), again.max_id()) == ([11], 10)
    again.close()


def test_a_new_jobs_row_written_late_leaves_its_later_version_standing(tmp_path: Path) -> None:
    # A submit indexes its jobs while the server queues them: a worker may run one and
    # the persister index its end first; the late first row must not undo that.
    index = JobIndex(tmp_path / "i.sqlite")
    done = replace(job(1), status=JobStatus.DONE, revision=3)
    index.upsert([done])
    index.upsert([job(1), job(2)], new=True)
    assert index.upsert_now([job(1)], new=True)
    assert index.revisions([1, 2]) == ({1: 3, 2: 0}, set())
    assert index.ids_with_status(["new"]) == [2]
    counts = index.counts()
    assert counts[("default", "a", "done")] == 1
    assert counts[("default", "a", "new")] == 1
    index.close()
