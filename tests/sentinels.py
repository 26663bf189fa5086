"""A Valkey primary, its replica and three Sentinels for failover tests, here or in the lab."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import redis
from redis.exceptions import RedisError

from bench.launch import stop_process
from core.config import Config, RedisConfig
from core.redis_server.binary import find_server_binary
from tests.helpers import wait_for

MASTER = "heromaster"
# Sentinel's own floor is 1 s of silence before a primary counts as down; with a quorum
# of two, the failover follows within a second or two of that.
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000

# Starts a node's `argv` (on the node's host), output to `log`; returns the process.
Launcher = Callable[["Node", Sequence[str], Path], "subprocess.Popen[bytes]"]


def local_launcher(_node: Node, argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    """Start a process on this machine, in its own session (a Ctrl-C reaches pytest only)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@dataclass
class Node:
    """One valkey-server (a data server or a Sentinel) of the set."""

    name: str
    host: str
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def socket(self) -> Path:
        """A unix socket too: the test reaches a lab host's server through the file system."""
        return self.directory / "s.sock"

    def client(self, password: str | None) -> redis.Redis:
        return redis.Redis(
            unix_socket_path=str(self.socket),
            password=password,
            socket_timeout=2,
            socket_connect_timeout=2,
        )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: the server dies with no goodbye, as a machine that loses power."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, 5)


@dataclass
class SentinelSet:
    """A primary, a replica and three Sentinels watching them under `MASTER`."""

    primary: Node
    replica: Node
    sentinels: list[Node]
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))

    @property
    def nodes(self) -> list[Node]:
        return [self.primary, self.replica, *self.sentinels]

    def redis_config(self) -> RedisConfig:
        """The `[redis]` section a HeroAgent process uses to find the primary."""
        return RedisConfig(
            sentinels=[node.address for node in self.sentinels],
            sentinel_master=MASTER,
            password=self.password,
        )

    def env(self) -> dict[str, str]:
        """The same as HEROAGENT_* variables, for processes the test starts."""
        return {
            "HEROAGENT_REDIS_SENTINELS": ",".join(node.address for node in self.sentinels),
            "HEROAGENT_REDIS_SENTINEL_MASTER": MASTER,
            "HEROAGENT_REDIS_PASSWORD": self.password,
        }

    def configure(self, config: Config) -> Config:
        """`config` with its `[redis]` section pointing at the Sentinels."""
        return replace(config, redis=replace(config.redis, **vars(self.redis_config())))

    def start(self, launch: Launcher) -> None:
        """Start every node and return once the replica is in sync and all Sentinels agree."""
        binary = str(find_server_binary())
        for node in (self.primary, self.replica):
            node.directory.mkdir(parents=True, exist_ok=True)
            conf = self._data_conf(node, replica_of=self.primary if node is self.replica else None)
            path = node.directory / "valkey.conf"
            path.write_text(conf)
            node.process = launch(node, [binary, str(path)], node.directory / "out.log")
        # Sentinels learn of replicas from the primary's INFO, asked at start and then only
        # every 10 s: started after the replica is in, they see it at once.
        wait_for(self._replica_in, 30, "the replica to sync with the primary")
        for node in self.sentinels:
            node.directory.mkdir(parents=True, exist_ok=True)
            path = node.directory / "sentinel.conf"
            path.write_text(self._sentinel_conf(node))
            argv = [binary, str(path), "--sentinel"]
            node.process = launch(node, argv, node.directory / "out.log")
        wait_for(self._synced, 30, "the replica to sync and the Sentinels to see everyone")

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()

    def _data_conf(self, node: Node, replica_of: Node | None) -> str:
        lines = [
            f"bind {node.host}",
            f"port {node.port}",
            f'unixsocket "{node.socket}"',
            "unixsocketperm 700",
            f'dir "{node.directory}"',
            "protected-mode no",
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            f"requirepass {self.password}",
            f"masterauth {self.password}",
            # The default waits 5 s for more replicas before a full sync starts.
            "repl-diskless-sync-delay 0",
        ]
        if replica_of is not None:
            lines.append(f"replicaof {replica_of.host} {replica_of.port}")
        return "\n".join(lines) + "\n"

    def _sentinel_conf(self, node: Node) -> str:
        primary = self.primary
        return (
            "\n".join(
                [
                    f"bind {node.host}",
                    f"port {node.port}",
                    f'unixsocket "{node.socket}"',
                    f'dir "{node.directory}"',
                    "protected-mode no",
                    f"sentinel monitor {MASTER} {primary.host} {primary.port} 2",
                    f"sentinel auth-pass {MASTER} {self.password}",
                    f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}",
                    f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}",
                    f"sentinel parallel-syncs {MASTER} 1",
                ]
            )
            + "\n"
        )

    def _replica_in(self) -> bool:
        try:
            with self.replica.client(self.password) as replica:
                if replica.info("replication").get("master_link_status") != "up":
                    return False
            with self.primary.client(self.password) as primary:
                info = primary.info("replication")
        except (RedisError, OSError):
            return False
        return any(
            isinstance(value, dict) and value.get("state") == "online"
            for key, value in info.items()
            if key.startswith("slave")
        )

    def _synced(self) -> bool:
        if not self._replica_in():
            return False
        try:
            for node in self.sentinels:
                with node.client(None) as client:
                    if len(client.sentinel_slaves(MASTER)) < 1:
                        return False
                    if len(client.sentinel_sentinels(MASTER)) < len(self.sentinels) - 1:
                        return False
        except (RedisError, OSError):
            return False
        return True

    def master_seen(self) -> set[str]:
        """The primary's address each Sentinel that answers names."""
        seen = set()
        for node in self.sentinels:
            try:
                with node.client(None) as client:
                    host, port = client.sentinel_get_master_addr_by_name(MASTER)
            except (RedisError, OSError, TypeError):
                continue
            seen.add(f"{host.decode() if isinstance(host, bytes) else host}:{port}")
        return seen

    def wait_promoted(self, seconds: float = 30) -> None:
        """Return once every Sentinel names the replica and the replica says it is primary."""

        def promoted() -> bool:
            if self.master_seen() != {self.replica.address}:
                return False
            try:
                with self.replica.client(self.password) as replica:
                    info = replica.info("replication")
            except (RedisError, OSError):
                return False
            return bool(info.get("role") == "master")

        wait_for(promoted, seconds, "the Sentinels to promote the replica")


def local_set(directory: Path, ports: Callable[[], int]) -> SentinelSet:
    """The set on 127.0.0.1, each node on a free port with its files under `directory`."""

    def node(name: str) -> Node:
        return Node(name, "127.0.0.1", ports(), directory / name)

    return SentinelSet(node("p"), node("r"), [node(f"s{i}") for i in (1, 2, 3)])
