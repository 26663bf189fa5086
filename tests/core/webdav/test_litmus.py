"""Debian's litmus WebDAV compliance suite against the running service, with auth and locks."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.core.webdav.dav import PASSWORD, USER, RunningDav

GROUPS = ("basic", "copymove", "props", "locks", "http")
SUMMARY = re.compile(r"<- summary for `(\w+)': of (\d+) tests run: (\d+) passed, (\d+) failed")


def test_every_litmus_group_passes(dav_auth: RunningDav, tmp_path: Path) -> None:
    litmus = shutil.which("litmus")
    if litmus is None:
        pytest.fail("litmus is not installed; `make test` installs it (scripts/system-deps.sh)")
    # litmus writes child.log and debug.log into its working directory.
    result = subprocess.run(
        [litmus, f"http://127.0.0.1:{dav_auth.port}/", USER, PASSWORD],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    summaries = {m[1]: (int(m[2]), int(m[3]), int(m[4])) for m in SUMMARY.finditer(output)}
    assert set(summaries) == set(GROUPS), output
    failed = {
        group: counts for group, counts in summaries.items() if counts[2] or counts[0] != counts[1]
    }
    assert not failed, output
    assert result.returncode == 0, output
    assert sum(run for run, _, _ in summaries.values()) == 104, output
