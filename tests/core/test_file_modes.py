"""Everything an engine writes under its data dir is private: files 0600, folders 0700."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.config import Config
from core.engine import Engine
from core.filemodes import make_private
from tests.helpers import async_poll, wait_job_ended


@pytest.fixture(autouse=True)
def keep_umask() -> Iterator[None]:
    """The engine sets the process umask; give the rest of the suite its own back."""
    before = os.umask(0o022)
    os.umask(before)
    try:
        yield
    finally:
        os.umask(before)


def loose_modes(root: Path) -> list[str]:
    """Every path under root (root included) that group or others may use at all."""
    loose = []
    for path in [root, *root.rglob("*")]:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            continue
        if info.st_mode & 0o077:
            loose.append(f"{oct(stat.S_IMODE(info.st_mode))} {path.relative_to(root)}")
    return loose


async def test_a_running_engine_keeps_its_data_private(engine_config: Config) -> None:
    os.umask(0o022)  # the usual login umask, which gave 0644/0755 before
    data = engine_config.data_path
    async with Engine(engine_config) as engine:
        view = await engine.api.submit("!!fake.return_success message:private\n", topic="t")
        await wait_job_ended(engine, view.job_id)
        webdav = engine.services["webdav"].address()
        async with httpx.AsyncClient(base_url=webdav, timeout=10) as dav:
            assert (await dav.request("MKCOL", "notes")).status_code == 201
            assert (await dav.put("notes/a.txt", content=b"hi")).status_code == 201
            proppatch = (
                b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z">'
                b"<D:set><D:prop><Z:color>red</Z:color></D:prop></D:set></D:propertyupdate>"
            )
            assert (
                await dav.request("PROPPATCH", "notes/a.txt", content=proppatch)
            ).status_code == 207
        # An AOF rewrite makes valkey write its base RDB and manifest as well.
        redis = engine.redis.client()
        await redis.bgrewriteaof()

        async def rewritten() -> bool:
            info = await redis.info("persistence")
            return bool(info["aof_rewrite_in_progress"] == 0 and info["aof_rewrites"] >= 1)

        await async_poll(rewritten, 10, "the AOF rewrite")
        await redis.aclose()
        names = {p.name for p in data.rglob("*")}
        assert {"password", "valkey.conf", "valkey.log", "props.db", "a.txt"} <= names
        assert any(name.endswith(".aof") for name in names)
        assert any(name.endswith(".rdb") for name in names)
        assert loose_modes(data) == []
    assert loose_modes(data) == []


def test_what_an_older_version_left_open_is_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "jobsdb").mkdir(parents=True, mode=0o755)
    (data / "jobsdb" / "0.db").write_bytes(b"x")
    (data / "jobsdb" / "0.db").chmod(0o644)
    (data / "jobs-index.sqlite").write_bytes(b"x")
    (data / "jobs-index.sqlite").chmod(0o644)
    data.chmod(0o755)
    make_private(data)
    assert loose_modes(data) == []
