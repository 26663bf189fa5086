"""The lab fixture: one lab per session, its processes stopped after each test, nothing left."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from tests.helpers import pid_running
from tests.netlab.lab import Lab, leftovers, remove_names

_labs: list[Lab] = []


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "the network lab needs root (network namespaces, veth pairs, a bridge)"
    if shutil.which("ip") is None:
        return "the network lab needs iproute2's `ip` (scripts/system-deps.sh installs it)"
    return None


@pytest.fixture(scope="session")
def lab_session() -> Iterator[Lab]:
    reason = _why_not()
    if reason is not None:
        pytest.skip(reason)
    with closing(Lab()) as lab:
        _labs.append(lab)
        yield lab


@pytest.fixture
def lab(lab_session: Lab) -> Iterator[Lab]:
    """The session's lab, with every link up and no process of an earlier test in it."""
    lab_session.stop_processes()
    try:
        yield lab_session
    finally:
        lab_session.stop_processes()


@pytest.fixture
def lab_dir() -> Iterator[Path]:
    """A short temp dir for the hosts' data dirs (unix socket paths must stay short)."""
    with tempfile.TemporaryDirectory(prefix="hal-") as directory:
        yield Path(directory)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if the lab left a namespace, a link or a process behind."""
    problems = []
    for lab in _labs:
        names = leftovers(lab.owner)
        if names:
            problems.append(f"lab names left: {names}")
            remove_names(names)
        alive = [pid for pid in lab.started if pid_running(pid)]
        if alive:
            problems.append(f"lab processes still running: {alive}")
    if problems:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("netlab: " + "; ".join(problems), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
