"""The lab itself: hosts reach each other, a cut link drops traffic, nothing is left behind."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import pid_running, wait_for
from tests.netlab.lab import Lab, clean_stale, leftovers, netns_pids

PORT = 7000
LISTEN = (
    "import socket,sys\n"
    "s=socket.create_server((sys.argv[1],int(sys.argv[2])))\n"
    "print('listening',flush=True)\n"
    "while True: s.accept()[0].close()\n"
)
CONNECT = "import socket,sys; socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=1)"


def reaches(lab: Lab, source: str, target: str) -> bool:
    address = lab[target].address
    probe = lab[source].run([sys.executable, "-c", CONNECT, address, str(PORT)], check=False)
    return probe.returncode == 0


def test_hosts_reach_each_other_until_a_link_is_cut(lab: Lab) -> None:
    server = lab["eng"].popen([sys.executable, "-c", LISTEN, lab["eng"].address, str(PORT)])
    assert server.stdout is None
    wait_for(lambda: reaches(lab, "w1", "eng"), 10, "the listener on the engine host")
    assert reaches(lab, "w2", "eng")

    lab["w1"].cut()
    assert not lab["w1"].link_up
    assert not reaches(lab, "w1", "eng")
    assert reaches(lab, "w2", "eng"), "cutting one host cut another"

    lab["w1"].restore()
    assert lab["w1"].link_up
    assert reaches(lab, "w1", "eng")

    lab["w2"].blackhole()
    assert lab["w2"].link_up, "a blackholed host keeps its link"
    assert not reaches(lab, "w2", "eng")
    lab["w2"].restore()
    assert reaches(lab, "w2", "eng")


def test_every_name_carries_the_owner_pid(lab: Lab) -> None:
    names = leftovers(lab.owner)
    assert lab.bridge in names
    for host in lab.hosts.values():
        assert host.netns in names
        assert host.netns.startswith(f"ha-{lab.owner}-")
        assert len(host.link) <= 15


def test_close_removes_everything_and_stops_processes() -> None:
    # A lab of its own, owned by a process that stays alive: the session's is untouched.
    owner = subprocess.Popen(["sleep", "60"])
    try:
        lab = Lab(owner=owner.pid, hosts={"a": 101, "b": 102})
        child = lab["a"].popen(["sleep", "60"])
        # `ip netns exec` enters the namespace, then execs: poll until it has.
        wait_for(lambda: netns_pids(lab["a"].netns) == [child.pid], 5, "the child in its host")
        lab.close()
        assert leftovers(owner.pid) == []
        assert not pid_running(child.pid)
    finally:
        owner.kill()
        owner.wait()


def test_stale_lab_of_a_dead_owner_is_cleaned_a_live_ones_is_not() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    alive = subprocess.Popen(["sleep", "60"])
    try:
        stale = Lab(owner=dead.pid, hosts={"a": 103})
        stale.hosts.clear()  # "crashed": nobody will close it
        assert leftovers(dead.pid)
        # A new lab cleans, at its start, what a dead owner left.
        live = Lab(owner=alive.pid, hosts={"a": 104})
        try:
            assert leftovers(dead.pid) == []
            assert clean_stale() == []
            assert leftovers(alive.pid), "a live owner's lab was removed"
        finally:
            live.close()
    finally:
        alive.kill()
        alive.wait()
