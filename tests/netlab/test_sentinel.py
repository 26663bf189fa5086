"""Sentinel failover across hosts: the primary dies mid-load, and every job ends done once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.exceptions import RedisError

from bench.launch import heroagent_argv
from tests.helpers import wait_for
from tests.netlab.hosts import LOOPBACK_UI, ROOT, LabEngine, LabWorker, workers_seen
from tests.netlab.lab import LATER_HOSTS, Lab, LabError
from tests.sentinels import Node, SentinelSet

LEASE = 1.0
VALKEY_PORT = 6379
SENTINEL_PORT = 26379


@dataclass
class FailoverCluster:
    lab: Lab
    valkeys: SentinelSet
    engine: LabEngine
    workers: dict[str, LabWorker]
    directory: Path

    def worker(self, tag: str) -> LabWorker:
        """A worker on host `tag` that finds the primary through the Sentinels."""
        worker = LabWorker(
            self.lab[tag],
            None,
            self.directory / tag,
            lease=LEASE,
            env=self.valkeys.env(),
        )
        self.workers[tag] = worker
        return worker


@pytest.fixture
def failover_cluster(lab: Lab, lab_dir: Path) -> Iterator[FailoverCluster]:
    """Primary, replica and three Sentinels on hosts of their own; an engine; two workers."""
    for tag, number in LATER_HOSTS.items():
        if tag not in lab.hosts:
            lab.add_host(tag, number)

    def node(tag: str, port: int) -> Node:
        return Node(tag, lab[tag].address, port, lab_dir / tag)

    def launch(node: Node, argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
        return lab[node.name].popen(argv, log=log)

    valkeys = SentinelSet(
        node("vp", VALKEY_PORT),
        node("vr", VALKEY_PORT),
        [node(tag, SENTINEL_PORT) for tag in ("s1", "s2", "s3")],
    )
    try:
        valkeys.start(launch)
        engine = LabEngine(lab["eng"], lab_dir / "eng", env={**valkeys.env(), **LOOPBACK_UI})
        cluster = FailoverCluster(lab, valkeys, engine, {}, lab_dir)
        for tag in ("w1", "w2"):
            cluster.worker(tag)
        yield cluster
    finally:
        lab.stop_processes()


def _waiting(valkeys: SentinelSet) -> int | None:
    """Jobs still queued on the primary (through its socket), None when it does not answer."""
    try:
        with valkeys.primary.client(valkeys.password) as primary:
            queues = primary.smembers("heroagent:queues")
            return sum(int(primary.llen(f"heroqueue:{q.decode()}")) for q in queues)
    except (RedisError, OSError):
        return None


def _kill(cluster: FailoverCluster, tag: str) -> None:
    process = cluster.workers[tag].process
    process.kill()
    process.wait(10)


def _state(cluster: FailoverCluster, pid: int) -> str | None:
    """The worker's state in the engine's `/api/workers` (None while it cannot say)."""
    try:
        return workers_seen(cluster.engine).get(pid)
    except (LabError, subprocess.TimeoutExpired, ValueError, KeyError):
        return None  # the engine is between Redis servers, or not answering yet


def _run_failover(cluster: FailoverCluster, count: int, *, faults: bool) -> None:
    out = cluster.directory / "ended.json"
    log = cluster.directory / "driver.log"
    seconds = 120 + count / 20
    driver = cluster.lab["eng"].popen(
        [sys.executable, "-m", "tests.netlab.failover_driver", str(out), str(count), str(seconds)],
        env={"PYTHONPATH": ROOT, **cluster.valkeys.env()},
        log=log,
    )

    def submitted() -> bool:
        text = log.read_text() if log.exists() else ""
        assert driver.poll() is None, text
        return "submitted" in text

    wait_for(submitted, 60, "the driver to submit every job")

    # Mid-load: most of the jobs still queued, and the workers busy with the rest.
    def mid_load() -> bool:
        left = _waiting(cluster.valkeys)
        return left is not None and left < count * 0.8

    wait_for(mid_load, 60, "the workers to be well into the load")
    cluster.valkeys.primary.kill()
    if faults:
        # While the Sentinels fail over: a worker host cut off for (at least) three leases,
        # shown lost by the engine meanwhile, and the other worker SIGKILLed twice.
        cut = cluster.workers["w1"]
        cluster.lab["w1"].cut()
        cut_at = time.monotonic()
        _kill(cluster, "w2")
        cluster.valkeys.wait_promoted()
        cluster.worker("w2")
        wait_for(lambda: _state(cluster, cut.pid) == "lost", 60, "the cut host to show lost")
        time.sleep(max(0.0, 3 * LEASE - (time.monotonic() - cut_at)))  # the outage's length
        cluster.lab["w1"].restore()
        wait_for(lambda: _state(cluster, cut.pid) == "alive", 60, "the host to show alive again")
        second = cluster.workers["w2"]
        wait_for(lambda: _state(cluster, second.pid) == "alive", 60, "the new w2 to show alive")
        _kill(cluster, "w2")
        cluster.worker("w2")
    else:
        cluster.valkeys.wait_promoted()

    try:
        driver.wait(seconds + 60)
    except subprocess.TimeoutExpired:
        driver.kill()
        driver.wait(10)
    output = log.read_text()
    assert driver.returncode == 0, output + cluster.engine.log.read_text()[-4000:]
    ended: dict[str, list[list[str]]] = json.loads(out.read_text())
    assert len(ended) == count
    wrong = {job_id: ends for job_id, ends in ended.items() if [e[0] for e in ends] != ["done"]}
    assert not wrong, f"{len(wrong)} jobs did not end done exactly once: {list(wrong.items())[:5]}"
    engine_log = cluster.engine.log.read_text()
    assert "the Redis server changed" in engine_log, engine_log[-4000:]
    # Both worker hosts did some of the work, before and after the failover.
    workers = {e[0][1].split(":")[1] for e in ended.values()}
    assert len(workers) >= 2, workers


def test_the_primary_dies_mid_load_and_every_job_ends_done_once(
    failover_cluster: FailoverCluster,
) -> None:
    _run_failover(failover_cluster, 1_000, faults=False)


def test_failover_with_a_cut_worker_host_and_a_killed_worker_over_1000_jobs(
    failover_cluster: FailoverCluster,
) -> None:
    """The short version of the 5,000-job run below, every fault included."""
    _run_failover(failover_cluster, 1_000, faults=True)


@pytest.mark.slow
def test_failover_with_a_cut_worker_host_and_a_killed_worker_over_5000_jobs(
    failover_cluster: FailoverCluster,
) -> None:
    _run_failover(failover_cluster, 5_000, faults=True)


def test_the_cli_on_a_worker_host_reaches_the_new_primary(
    failover_cluster: FailoverCluster,
) -> None:
    cluster = failover_cluster
    cluster.valkeys.primary.kill()
    cluster.valkeys.wait_promoted()
    host = cluster.lab["w1"]
    params = cluster.directory / "echo.hero"
    params.write_text("!!core.echo message:after-the-failover\n")
    result = host.run(
        heroagent_argv(cluster.directory / "cli", "submit", "--json", "--wait", str(params)),
        env={"PYTHONPATH": ROOT, **cluster.valkeys.env()},
        timeout=60,
    )
    assert json.loads(result.stdout)["status"] == "done", result.stdout
