"""The peer libraries of the job benchmark: their venvs, and running their scripts.

The peers do not share one venv (arq 0.28 pins redis<6, Celery 5.7 wants redis>=6.4,
taskiq-redis wants redis>=8), and none of them belongs in HeroAgent's, so the bench
makes its own under `bench/.venvs/` (gitignored) with pinned versions, once; a changed
pin list rebuilds the venv. BullMQ runs on Node: `npm install` into `bench/.node/`
(gitignored) the same way. Each measurement runs `bench/peers/<lib>_peer.py` (or
`.mjs`) under that runtime. A peer whose install fails is reported as such.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
VENVS = BENCH / ".venvs"
SCRIPTS = BENCH / "peers"
NODE_DIR = BENCH / ".node"
NPM_PINS = {"bullmq": "6.7.0", "ioredis": "6.0.0"}

PINS: dict[str, list[str]] = {
    "peers": [
        "redis==8.1.0",
        "hiredis==3.5.0",
        "rq==3.0.0",
        "celery[redis]==5.7.0",
        "dramatiq[redis]==2.2.1",
        "huey==3.5.4",
        "saq==0.26.4",
    ],
    "arq": ["arq==0.28.0", "redis==5.3.1", "hiredis==3.5.0"],
    # taskiq-redis needs redis-py >= 8; streaq brings its own client (coredis).
    "taskiq": ["taskiq==0.13.0", "taskiq-redis==1.2.4", "redis==8.1.0", "hiredis==3.5.0"],
    "streaq": ["streaq==7.2.0", "coredis==6.9.0"],
}
# The console scripts the peer scripts start their workers with: a venv missing one
# (a half-finished install, a copied tree) is rebuilt rather than trusted.
ENTRY_POINTS: dict[str, list[str]] = {
    "peers": ["rq", "celery", "dramatiq", "huey_consumer", "saq"],
    "arq": ["arq"],
    "taskiq": ["taskiq"],
    "streaq": ["streaq"],
}


@dataclass(frozen=True)
class PeerSpec:
    """One peer library as the table shows it."""

    key: str
    label: str
    venv: str  # a key of PINS, or "node" for the npm folder
    # The library's batch enqueue call, shown in the table; "" when it has none.
    bulk: str = ""

    @property
    def script(self) -> Path:
        """The script that queues, starts the worker and times it."""
        suffix = "mjs" if self.venv == "node" else "py"
        return SCRIPTS / f"{self.key}_peer.{suffix}"

    def argv(self) -> list[str]:
        """The command that runs the script (installing its runtime on first use)."""
        if self.venv == "node":
            return [node_install(), str(self.script)]
        return [str(venv_python(self.venv)), str(self.script)]


PEERS = [
    PeerSpec("bullmq", "BullMQ 6.7, Node (Worker concurrency 10)", "node", "addBulk x1000"),
    PeerSpec("rq", "RQ 3.0 (SimpleWorker)", "peers", "enqueue_many x1000"),
    PeerSpec("arq", "arq 0.28 (max_jobs 10)", "arq"),
    PeerSpec("celery", "Celery 5.7 (solo pool)", "peers"),
    PeerSpec("dramatiq", "Dramatiq 2.2 (1 proc, 8 threads)", "peers"),
    PeerSpec("huey", "Huey 3.5 (1 thread)", "peers"),
    PeerSpec("saq", "SAQ 0.26 (concurrency 10)", "peers"),
    PeerSpec("taskiq", "taskiq 0.13 + taskiq-redis 1.2 (stream broker, 100 async)", "taskiq"),
    PeerSpec("streaq", "streaq 7.2 (concurrency 16)", "streaq", "enqueue_many x1000"),
]


@cache
def install(peer: PeerSpec) -> str:
    """Install the peer's runtime if needed; "" when ready, else why it is not."""
    try:
        peer.argv()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"not installed: {exc}"
    return ""


def node_install() -> str:
    """The node binary, with bullmq and ioredis installed under bench/.node/ (once)."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        raise OSError("node and npm are not on PATH")
    stamp = NODE_DIR / ".bench-pins"
    wanted = json.dumps(NPM_PINS, sort_keys=True) + "\n"
    if stamp.exists() and stamp.read_text() == wanted:
        return node
    print(f"   npm install into {NODE_DIR} ({NPM_PINS})", flush=True)
    shutil.rmtree(NODE_DIR, ignore_errors=True)
    NODE_DIR.mkdir(parents=True)
    package = {"name": "heroagent-bench-peers", "private": True, "dependencies": NPM_PINS}
    (NODE_DIR / "package.json").write_text(json.dumps(package, indent=2) + "\n")
    subprocess.run(
        [npm, "install", "--silent", "--no-audit", "--no-fund"],
        cwd=NODE_DIR,
        check=True,
        timeout=600,
    )
    stamp.write_text(wanted)
    return node


def venv_python(name: str) -> Path:
    """The python of a peer venv, created (or rebuilt for changed pins) as needed."""
    root = VENVS / name
    python = root / "bin" / "python"
    stamp = root / ".bench-pins"
    wanted = "\n".join(PINS[name]) + "\n"
    complete = all((root / "bin" / script).exists() for script in ENTRY_POINTS[name])
    if python.exists() and complete and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"   creating {root} ({', '.join(PINS[name])})", flush=True)
    shutil.rmtree(root, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        + PINS[name],
        check=True,
    )
    stamp.write_text(wanted)
    return python


def run_peer(
    peer: PeerSpec,
    mode: str,
    url: str,
    log: Path,
    *,
    n: int = 0,
    samples: int = 0,
    workers: int = 1,
    server_pid: int | None = None,
) -> dict[str, Any]:
    """Run one drain, latency or enqueue measurement of a peer; its JSON result."""
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [*peer.argv(), mode, "--log", str(log)]
    if mode == "latency":
        argv += ["--samples", str(samples)]
    else:
        argv += ["--n", str(n), "--workers", str(workers)]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["BENCH_REDIS_URL"] = url
    env["BENCH_NODE_DIR"] = str(NODE_DIR)
    if server_pid is not None:
        env["BENCH_VALKEY_PID"] = str(server_pid)
    out = subprocess.run(argv, cwd=SCRIPTS, env=env, capture_output=True, text=True, timeout=1_800)
    if out.returncode != 0:
        raise RuntimeError(f"{peer.label} {mode} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result
