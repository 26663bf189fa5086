"""A lab of hosts on one machine: network namespaces on veth pairs joined by a bridge."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import pid_running

# Every name the lab makes starts with PREFIX, then its owner's pid: `ha-<pid>-<tag>`.
# A crashed run's leftovers are recognised by that pid being dead, and a parallel run's
# are left alone because its pid lives. Interface names hold 15 bytes: "ha-" + 7 pid
# digits + "-" + a tag of 4 at most.
PREFIX = "ha-"
NAME = re.compile(r"^ha-(\d+)-([a-z0-9]{1,4})$")
SUBNET = "10.77.0"
MAX_TAG = 4
STOP_SECONDS = 5.0

# The lab's hosts and their addresses: the engine and two workers now; the Valkey
# primary, its replica and three Sentinels get hosts of their own later (issue 18).
HOSTS: dict[str, int] = {"eng": 1, "w1": 11, "w2": 12}
LATER_HOSTS: dict[str, int] = {"vp": 21, "vr": 22, "s1": 31, "s2": 32, "s3": 33}


class LabError(RuntimeError):
    """A lab command failed."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `ip ARGS` in this (the root) namespace."""
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if check and result.returncode != 0:
        raise LabError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the command name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def netns_names() -> list[str]:
    """Names of every network namespace `ip netns` knows."""
    out = ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def link_names() -> list[str]:
    """Names of every link in the root namespace."""
    out = ip("-o", "link", "show", check=False).stdout
    names = []
    for line in out.splitlines():
        # "7: ha-123-w1@if6: <...>": the name, without the peer's index.
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@")[0])
    return names


def owned_by(name: str) -> int | None:
    """The owner pid of a lab name, or None when the name is not the lab's."""
    match = NAME.match(name)
    return int(match.group(1)) if match else None


def leftovers(owner: int | None = None) -> list[str]:
    """Lab namespaces and links on this machine: of `owner`, or of any owner."""
    found = []
    for name in [*netns_names(), *link_names()]:
        pid = owned_by(name)
        if pid is not None and (owner is None or pid == owner):
            found.append(name)
    return sorted(set(found))


def remove_names(names: Iterable[str]) -> None:
    """Delete these namespaces (killing what runs in them) and links; ignore missing ones."""
    names = list(names)
    namespaces = set(netns_names())
    links = set(link_names())
    for name in names:
        if name in namespaces:
            kill_netns_processes(name)
        # Our end of a veth first: deleting it takes the host's end too, at once, where a
        # namespace's own links go away only when the kernel gets round to it.
        if name in links:
            ip("link", "delete", name, check=False)
        if name in namespaces:
            ip("netns", "delete", name, check=False)
    deadline = time.monotonic() + STOP_SECONDS
    while set(names) & set(leftovers()) and time.monotonic() < deadline:
        time.sleep(0.05)


def kill_netns_processes(netns: str) -> None:
    """SIGTERM, then SIGKILL, whatever still runs in a lab namespace (it is the lab's)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = netns_pids(netns)
        for pid in pids:
            _signal(pid, sig)
        deadline = time.monotonic() + STOP_SECONDS
        while pids and time.monotonic() < deadline:
            pids = [pid for pid in pids if pid_running(pid)]
            if pids:
                time.sleep(0.05)
        if not pids:
            return


def netns_pids(netns: str) -> list[int]:
    """Pids of the processes running in a namespace."""
    out = ip("netns", "pids", netns, check=False).stdout
    return [int(word) for word in out.split() if word.isdigit()]


def clean_stale() -> list[str]:
    """Remove the leftovers of lab runs whose owner process is dead; return their names."""
    stale = [name for name in leftovers() if not pid_running(owned_by(name) or 0)]
    remove_names(stale)
    return stale


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


@dataclass
class Host:
    """One host of the lab: a namespace with one address on the lab's bridge."""

    lab: Lab
    tag: str
    address: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def netns(self) -> str:
        return self.lab.name(self.tag)

    @property
    def link(self) -> str:
        """Our end of the host's veth pair, on the bridge (the host's end is its eth0)."""
        return self.lab.name(self.tag)

    def argv(self, command: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *command]

    def popen(
        self,
        command: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        log: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start a command inside this host; the lab stops it at teardown at the latest.

        `ip netns exec` execs the command in place, so the child's pid is the command's.
        """
        out = log.open("ab") if log is not None else subprocess.DEVNULL
        try:
            process = subprocess.Popen(
                self.argv(command),
                env={**os.environ, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Its own process group: a Ctrl-C at the terminal reaches pytest, whose
                # teardown then stops the lab's processes in order.
                start_new_session=True,
            )
        finally:
            if log is not None and not isinstance(out, int):
                out.close()
        self.processes.append(process)
        self.lab.started.append(process.pid)
        self.lab.running.append((self, process))
        return process

    def run(
        self,
        command: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        timeout: float = 30,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside this host to its end; return its output."""
        result = subprocess.run(
            self.argv(command),
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise LabError(f"{self.tag}: {' '.join(command)}: {result.stderr.strip()}")
        return result

    def cut(self) -> None:
        """Take the host off the network: its link goes down, packets to and from it drop.

        The host sees its carrier go: connects fail fast once its neighbours' addresses
        cannot be resolved ("no route to host").
        """
        ip("link", "set", self.link, "down")

    def blackhole(self) -> None:
        """Drop the host's traffic silently, its link still up: a partition beyond a router.

        Our end leaves the bridge, so what the host sends goes nowhere and nothing comes
        back: connects and reads run into their timeouts instead of failing at once.
        """
        ip("link", "set", self.link, "nomaster")

    def restore(self) -> None:
        """Put the host back on the network (after `cut` or `blackhole`)."""
        ip("link", "set", self.link, "master", self.lab.bridge)
        ip("link", "set", self.link, "up")

    @property
    def link_up(self) -> bool:
        flags = ip("-o", "link", "show", self.link).stdout.split("<", 1)[1].split(">", 1)[0]
        return "UP" in flags.split(",")

    def stop(self, process: subprocess.Popen[bytes], seconds: float = STOP_SECONDS) -> int:
        """SIGTERM a process started here, SIGKILL it if it does not end in time."""
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(seconds)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(seconds)
        return process.returncode

    def stop_all(self) -> None:
        """Stop every process started here, then anything else still in the namespace."""
        for process in self.processes:
            self.stop(process)
        self.processes.clear()
        kill_netns_processes(self.netns)


class Lab:
    """Hosts on a bridge, all named `ha-<owner pid>-…`; `close()` removes every part."""

    def __init__(self, owner: int | None = None, hosts: dict[str, int] | None = None) -> None:
        self.owner = owner if owner is not None else os.getpid()
        self.bridge = self.name("br")
        self.hosts: dict[str, Host] = {}
        # Every pid the lab ever started, for the check that none outlives it.
        self.started: list[int] = []
        # Processes in the order they started: they stop in reverse, so workers go
        # before the engine they talk to, as a person would stop them.
        self.running: list[tuple[Host, subprocess.Popen[bytes]]] = []
        wanted = hosts if hosts is not None else HOSTS
        try:
            clean_stale()
            ip("link", "add", self.bridge, "type", "bridge")
            ip("link", "set", self.bridge, "up")
            for tag, number in wanted.items():
                self.add_host(tag, number)
        except BaseException:
            self.close()
            raise

    def name(self, tag: str) -> str:
        if len(tag) > MAX_TAG:
            raise ValueError(f"host tag {tag!r} is longer than {MAX_TAG}")
        return f"{PREFIX}{self.owner}-{tag}"

    def add_host(self, tag: str, number: int) -> Host:
        """A new namespace on the bridge, at 10.77.0.<number>."""
        host = Host(self, tag, f"{SUBNET}.{number}")
        ns = host.netns
        ip("netns", "add", ns)
        self.hosts[tag] = host
        ip("link", "add", host.link, "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("link", "set", host.link, "master", self.bridge)
        ip("link", "set", host.link, "up")
        for args in (
            ("link", "set", "lo", "up"),
            ("addr", "add", f"{host.address}/24", "dev", "eth0"),
            ("link", "set", "eth0", "up"),
        ):
            ip("-n", ns, *args)
        return host

    def __getitem__(self, tag: str) -> Host:
        return self.hosts[tag]

    def stop_processes(self) -> None:
        """Stop every process of every host (between tests), and restore cut links."""
        self._stop_running()
        for host in self.hosts.values():
            host.stop_all()
            if host.link in link_names():
                host.restore()

    def _stop_running(self) -> None:
        while self.running:
            host, process = self.running.pop()
            host.stop(process)

    def close(self) -> None:
        """Stop everything the lab started and remove its namespaces, links and bridge."""
        self._stop_running()
        for host in self.hosts.values():
            host.stop_all()
        # Only what the lab made: anything else under its prefix is a leak for the
        # session's final check to report (and then remove).
        remove_names([*(host.netns for host in self.hosts.values()), self.bridge])
        self.hosts.clear()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
