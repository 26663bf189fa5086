"""HeroAgent on lab hosts: an engine bound to its lab address, workers that reach it by URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.launch import heroagent_argv
from core.config import Config, load_config
from core.events.bus import EventBus
from core.redis_server.service import RedisService
from heroagent import AsyncClient
from tests.netlab.lab import Host

# Inside its own namespace every port is free: the engine's valkey can have a fixed one.
REDIS_PORT = 6390
ROOT = str(Path(__file__).resolve().parents[2])


def _env(extra: dict[str, str]) -> dict[str, str]:
    return {"PYTHONPATH": ROOT, **extra}


def _wait_line(log: Path, process: subprocess.Popen[bytes], text: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        output = log.read_text(errors="replace") if log.exists() else ""
        if text in output:
            return
        if process.poll() is not None:
            raise AssertionError(f"exited {process.returncode} before {text!r}:\n{output}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {text!r} within {seconds} s:\n{output}")
        time.sleep(0.05)


class LabEngine:
    """`heroagent --serve` on a lab host: valkey on its lab address, with its password.

    WebDAV and the UI are off (binding them beyond loopback needs their own credentials),
    and the engine runs no jobs itself, so every job runs on a worker host.
    """

    def __init__(
        self,
        host: Host,
        data: Path,
        *,
        worker_count: int = 0,
        env: dict[str, str] | None = None,
    ) -> None:
        """`env` adds HEROAGENT_* settings: the Sentinels' instead of a valkey of its own."""
        self.host = host
        self.data = data
        self.log = data.parent / f"{host.tag}-engine.log"
        self.process = host.popen(
            heroagent_argv(
                data, "--host", host.address, "--redis-port", str(REDIS_PORT), "--serve"
            ),
            env=_env(
                {
                    "HEROAGENT_ENABLE_WEBDAV": "false",
                    "HEROAGENT_ENABLE_UI": "false",
                    "HEROAGENT_JOBS_WORKER_COUNT": str(worker_count),
                    **(env or {}),
                }
            ),
            log=self.log,
        )
        _wait_line(self.log, self.process, "ready", 30)

    @property
    def password(self) -> str:
        return (self.data / "redis" / "password").read_text().strip()

    @property
    def url(self) -> str:
        """What a worker on another host is given: only this, no data dir of the engine.

        Built by the engine's own helper, as a person would be told to get it.
        """
        flags = {
            "data_dir": str(self.data),
            "host": self.host.address,
            "redis.tcp_port": REDIS_PORT,
        }
        config = load_config(Path(os.devnull), env={}, flags=flags).config
        url = RedisService(config, EventBus()).url(with_password=True)
        assert url == f"redis://:{self.password}@{self.host.address}:{REDIS_PORT}", url
        return url

    def config(self) -> Config:
        """A client config for the engine's unix socket.

        A socket path is no network address: the test process, in the root namespace,
        reaches the engine host's valkey through it without an address of its own.
        """
        return load_config(Path(os.devnull), env={}, flags={"data_dir": str(self.data)}).config

    def cli(self, *args: str, timeout: float = 30) -> str:
        """Run `heroagent ARGS` on the engine's host, as a person there would; its stdout."""
        command = heroagent_argv(self.data, *args)
        return self.host.run(command, env=_env({}), timeout=timeout).stdout

    def client(self) -> AsyncClient:
        return AsyncClient.from_config(self.config(), wait_seconds=20)


class LabWorker:
    """`heroagent worker --redis-url …` on a lab host (or with the Sentinels in `env`)."""

    def __init__(
        self,
        host: Host,
        url: str | None,
        data: Path,
        *,
        lease: float,
        slots: int = 5,
        wait: bool = True,
        env: dict[str, str] | None = None,
    ) -> None:
        self.host = host
        self.log = data.parent / f"{host.tag}-worker.log"
        where = ("--redis-url", url) if url else ()
        self.process = host.popen(
            heroagent_argv(data, *where, "worker"),
            env=_env(
                {
                    "HEROAGENT_JOBS_LEASE_SECONDS": f"{lease:g}",
                    "HEROAGENT_JOBS_WORKER_COUNT": str(slots),
                    "HEROAGENT_JOBS_MAX_ATTEMPTS": "50",
                    **(env or {}),
                }
            ),
            log=self.log,
        )
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        """Return once the worker has registered with the engine's server."""
        _wait_line(self.log, self.process, "ready", 30)

    @property
    def pid(self) -> int:
        return self.process.pid

    def owns(self, worker: str) -> bool:
        """True when a job's `worker` field names this process (host:pid:suffix).

        The hosts share the machine's hostname (only the network is separate), so the
        pid tells them apart.
        """
        parts = worker.split(":")
        return len(parts) >= 2 and parts[1] == str(self.pid)

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")


# The HTTP UI on the engine host's loopback only: no token needed, nothing beyond the host.
UI_PORT = 8090
LOOPBACK_UI = {
    "HEROAGENT_ENABLE_UI": "true",
    "HEROAGENT_UI_HOST": "127.0.0.1",
    "HEROAGENT_UI_PORT": str(UI_PORT),
}


def workers_seen(engine: LabEngine) -> dict[int, str]:
    """The engine's `GET /api/workers`, asked on its own host: pid -> state."""
    url = f"http://127.0.0.1:{UI_PORT}/api/workers"
    fetch = (
        f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=10).read().decode())"
    )
    out = engine.host.run([sys.executable, "-c", fetch]).stdout
    return {w["pid"]: w["state"] for w in json.loads(out)}
