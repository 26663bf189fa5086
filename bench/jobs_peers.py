"""The peer libraries of the job benchmark: their venvs, and running their scripts.

The peers do not share one venv (arq 0.28 pins redis<6, Celery 5.7 wants redis>=6.4),
and none of them belongs in HeroAgent's, so the bench makes its own under
`bench/.venvs/` (gitignored) with pinned versions, once; a changed pin list rebuilds
the venv. Each measurement runs `bench/peers/<lib>_peer.py` under that venv's python.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
VENVS = BENCH / ".venvs"
SCRIPTS = BENCH / "peers"

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
}


@dataclass(frozen=True)
class PeerSpec:
    """One peer library as the table shows it."""

    key: str
    label: str
    venv: str

    @property
    def script(self) -> Path:
        """The script that queues, starts the worker and times it."""
        return SCRIPTS / f"{self.key}_peer.py"


PEERS = [
    PeerSpec("rq", "RQ 3.0 (SimpleWorker)", "peers"),
    PeerSpec("arq", "arq 0.28 (max_jobs 10)", "arq"),
    PeerSpec("celery", "Celery 5.7 (solo pool)", "peers"),
    PeerSpec("dramatiq", "Dramatiq 2.2 (1 proc, 8 threads)", "peers"),
    PeerSpec("huey", "Huey 3.5 (1 thread)", "peers"),
    PeerSpec("saq", "SAQ 0.26 (concurrency 10)", "peers"),
]


def venv_python(name: str) -> Path:
    """The python of a peer venv, created (or rebuilt for changed pins) as needed."""
    root = VENVS / name
    python = root / "bin" / "python"
    stamp = root / ".bench-pins"
    wanted = "\n".join(PINS[name]) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
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
    peer: PeerSpec, mode: str, url: str, log: Path, *, n: int = 0, samples: int = 0
) -> dict[str, Any]:
    """Run one drain or latency measurement of a peer; its JSON result."""
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [str(venv_python(peer.venv)), str(peer.script), mode, "--log", str(log)]
    argv += ["--n", str(n)] if mode == "drain" else ["--samples", str(samples)]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["BENCH_REDIS_URL"] = url
    out = subprocess.run(argv, cwd=SCRIPTS, env=env, capture_output=True, text=True, timeout=1_800)
    if out.returncode != 0:
        raise RuntimeError(f"{peer.label} {mode} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result
