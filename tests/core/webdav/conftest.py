"""Fixtures for the WebDAV tests: a running service on a free port in a temp root."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from tests.core.webdav.dav import PASSWORD, USER, RunningDav, dav_config


@pytest.fixture
def dav(short_tmp: Path) -> Iterator[RunningDav]:
    """An anonymous read-write share on loopback."""
    with closing(RunningDav(dav_config(short_tmp))) as server:
        yield server


@pytest.fixture
def dav_auth(short_tmp: Path) -> Iterator[RunningDav]:
    """A read-write share that requires the test user."""
    with closing(RunningDav(dav_config(short_tmp, users=True), auth=(USER, PASSWORD))) as server:
        yield server


@pytest.fixture
def dav_readonly(short_tmp: Path) -> Iterator[RunningDav]:
    """A read-only share with some content, requiring the test user."""
    root = short_tmp / "root"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "a.txt").write_bytes(b"read me\n")
    with closing(
        RunningDav(
            dav_config(short_tmp, {"webdav.readonly": True}, users=True), auth=(USER, PASSWORD)
        )
    ) as server:
        yield server
