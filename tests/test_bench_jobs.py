"""The job benchmark runs its HeroAgent part end to end in quick form (offline, no peers)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from bench import jobs, profile, profile_submit

ROOT = Path(__file__).resolve().parent.parent


def test_jobs_bench_quick_heroagent_only(tmp_path: Path) -> None:
    out = tmp_path / "jobs.json"
    argv = [sys.executable, "-m", "bench.jobs", "--quick", "--only", "heroagent"]
    argv += ["--jobs", "200", "--samples", "5", "--rss-jobs", "2000", "--enqueue", "50"]
    argv += ["--profile-jobs", "200"]
    argv += ["--json", str(out)]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("system  "))
    for column in ("drain 1 worker jobs/s", "drain 2 workers jobs/s", "p99 ms", "CPU µs/job"):
        assert column in header
    for label in ("`heroagent worker`", "in-process watchdog", "HTTP POST /api/jobs"):
        assert any(line.startswith(f"HeroAgent, {label}") for line in lines), label
    assert "engine RSS with 2,000 jobs in history" in result.stdout
    assert "target Client.submit_many (and the best peer's bulk) >= 10,000/s" in result.stdout
    assert "target 32 concurrent AsyncClient.submit >= 5,000/s" in result.stdout
    # The profile's buckets, engine and worker side by side.
    bucket_rows = {line.split()[0] for line in lines if line.split()}
    assert {"fetch", "run", "report", "persist", "index", "events", "asyncio"} <= bucket_rows
    summary = json.loads(out.read_text())
    first, inproc, http, concurrent = summary["systems"]
    assert [len(r) for r in first["runs"].values()] == [1, 1]
    assert list(inproc["runs"]) == ["0"]
    assert len(first["latency_s"]) == 5
    assert first["enqueue"]["one_per_s"] > 0
    assert first["enqueue"]["bulk_per_s"] > 0
    assert http["enqueue"]["one_per_s"] > 0
    assert http["enqueue"]["bulk_per_s"] > 0  # POST /api/jobs/batch
    assert concurrent["enqueue"]["one_per_s"] > 0  # concurrent AsyncClient.submit
    cpu = first["cpu_us_per_job"]
    # A drain this short may end within a clock tick (10 ms) of its first result, so a
    # process's CPU between the two can read 0; a worker's start-up, before it, never does.
    assert min(cpu["engine"], cpu["worker 1"]) >= 0
    assert first["runs"]["1"][0]["cpu_startup"]["workers"][0] > 0
    assert cpu["total"] == sum(v for k, v in cpu.items() if k != "total")
    assert summary["rss"]["rss_mb"] > 0
    assert summary["profile"]["jobs"] == 199


def test_profile_buckets_by_module_and_function() -> None:
    core = str(ROOT / "core")
    assert profile.bucket_of((f"{core}/jobs/queue.py", 76, "fetch_many")) == "fetch"
    assert profile.bucket_of((f"{core}/jobs/queue.py", 104, "complete_many")) == "report"
    reporter = profile.REPORTER.start
    assert profile.bucket_of((f"{core}/watchdog/pool.py", reporter + 1, "_flush")) == "report"
    assert profile.bucket_of((f"{core}/ourdb/db.py", 1, "set")) == "persist"
    assert profile.bucket_of(("~", 0, "<method 'execute' of 'sqlite3.Connection' objects>")) == (
        "index"
    )
    # A plain builtin has no bucket of its own: its callers' buckets share its time.
    assert profile.bucket_of(("~", 0, "<method 'append' of 'list' objects>")) is None


def test_readme_block_rewritten(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        f"# x\n\n## Benchmarks\n\n{jobs.README_START}\nold\n{jobs.README_END}\ntail\n"
    )
    peer = jobs.System("rq", "RQ", True, note="not installed: no network")
    jobs.rewrite_readme([peer], jobs.QUICK, True, "1.00, 1.00, 1.00", readme)
    text = readme.read_text()
    assert "old" not in text
    assert text.endswith(f"{jobs.README_END}\ntail\n")
    assert "Smoke run" in text
    assert "Only ratios within one run compare" in text
    assert "| RQ | not installed: no network |" in text


def test_submit_profile_runs_and_sorts_the_submit_path(tmp_path: Path) -> None:
    core = str(ROOT / "core")
    bucket = profile_submit.submit_bucket
    assert bucket((f"{core}/jobs/manager.py", 1, "_check")) == "checks"
    assert bucket((f"{core}/jobs/manager.py", 1, "_announce")) == "events"
    assert bucket((f"{core}/jobs/model.py", 1, "to_hash")) == "records"
    assert bucket((f"{core}/remote.py", 1, "answer")) == "request channel"
    assert bucket(("~", 0, "<built-in method posix.fsync>")) == "persist"
    argv = [sys.executable, "-m", "bench.profile_submit", "--jobs", "300", "--mode", "single"]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {line.split("  ")[0] for line in result.stdout.splitlines()}
    assert {"checks", "records", "persist", "enqueue", "CPU (no profiler)"} <= rows
    assert "single: 300 jobs at" in result.stdout


def test_the_drain_rate_counts_from_the_first_result_to_the_last() -> None:
    from bench.jobs import drain_rate

    # 1,001 jobs, the first done 0.5 s after the workers started, the last 1 s later.
    assert drain_rate({"n": 1_001, "startup_s": 0.5, "total_s": 1.5}) == 1_000.0


def test_the_scale_ceiling_is_the_cores_or_the_engine_whichever_binds_first() -> None:
    from bench.jobs import scale_ceiling

    one = {"engine": 60.0, "worker 1": 40.0, "valkey": 40.0, "total": 140.0}
    two = {"engine": 62.5, "worker 1": 25.0, "worker 2": 25.0, "valkey": 47.5, "total": 160.0}
    lines = " ".join(scale_ceiling(10_000.0, one, two, 2))
    assert "1.40 of 2 cores busy" in lines
    # Two cores: 2e6 / 160 = 12,500/s; four: 4e6 / 160 = 25,000, but the engine's 62.5 µs
    # on one core stop it at 16,000/s.
    assert "at most 12,500/s on 2 cores, 1.25x of 1 worker" in lines
    assert "on 4 cores 16,000/s, 1.60x" in lines
    assert "is the bound" in lines
    assert scale_ceiling(10_000.0, one, None, 2) == []


def test_submit_trace_times_each_stage_once_per_single_submit() -> None:
    argv = [sys.executable, "-m", "bench.trace_submit", "--jobs", "100"]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "100 submits one at a time:" in result.stdout
    # A row: the stage (words), p50 and p90 µs, calls per submit (path stages only), what.
    rows = {}
    for line in result.stdout.splitlines():
        found = re.match(r"^(\S+(?: \S+)*?)\s{2,}(\d+)\s+(\d+)\s+([\d.]+)?\s", line)
        if found:
            rows[found[1]] = found[4]
    # One call at a time: each stage runs once per submit (one commit, one ENQUEUE).
    for stage in ("call", "batch", "checks", "durable write", "commit", "fdatasync"):
        assert rows[stage] == "1.00", (stage, result.stdout)
    for stage in ("index", "enqueue", "bus"):
        assert rows[stage] == "1.00", (stage, result.stdout)
    assert {"bare fdatasync", "redis PING"} <= set(rows), result.stdout
    assert "valkey per ENQUEUE" in result.stdout


def test_every_worker_script_a_peer_starts_is_checked_in_its_venv() -> None:
    """A venv that lost a console script its peer starts is rebuilt, not trusted."""
    from bench import jobs_peers

    assert set(jobs_peers.ENTRY_POINTS) == set(jobs_peers.PINS)
    for peer in jobs_peers.PEERS:
        if peer.venv == "node":
            continue
        started = re.findall(r'venv_bin\("([^"]+)"\)', peer.script.read_text())
        assert started, peer.key
        assert set(started) <= set(jobs_peers.ENTRY_POINTS[peer.venv]), peer.key
