"""Built-in actors: file.* stays inside the WebDAV root; shell.run leaves no process behind."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.heroscript import parser
from core.heroscript.actors.registry import ActorRegistry
from core.heroscript.context import ActionContext
from core.heroscript.formatter import render_value
from core.heroscript.runner import PlaybookResult, run_playbook
from core.heroscript.settings import ActorsSettings
from tests.helpers import async_wait_for


def _registry(root: Path | None, shell: bool = False) -> ActorRegistry:
    return ActorRegistry.from_settings(
        ActorsSettings(files_root=root, enable_shell=shell), plugins=False
    )


async def _run(registry: ActorRegistry, script: str) -> PlaybookResult:
    return await run_playbook(parser.parse(script), registry)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    webdav = tmp_path / "webdav"
    webdav.mkdir()
    return webdav


async def test_file_write_read_list_delete(root: Path) -> None:
    reg = _registry(root)
    script = (
        "!!file.write path:docs/a.txt content:'hello world'\n"
        "!!file.write path:/docs/a.txt content:' again' append:true\n"
        "!!file.read path:docs/a.txt\n"
        "!!file.list path:/ recursive:true\n"
        "!!file.delete path:docs/a.txt\n"
        "!!file.list path:docs\n"
    )
    result = await _run(reg, script)
    assert result.ok, result.error
    values = [r.result for r in result.results]
    assert values[0] == {"path": "docs/a.txt", "bytes": 11}
    assert values[2] == "hello worldagain"
    assert values[3] == ["docs/", "docs/a.txt"]
    assert values[4] is True
    assert values[5] == []


@pytest.mark.parametrize(
    "path", ["../outside.txt", "docs/../../outside.txt", "..", "/../outside.txt"]
)
async def test_paths_escaping_the_root_are_refused(root: Path, path: str) -> None:
    reg = _registry(root)
    for action in ("write", "read", "delete", "list"):
        result = await _run(reg, f"!!file.{action} path:'{path}'")
        assert result.error is not None
        assert "outside the WebDAV root" in result.error.message, (action, result.error)
    assert not (root.parent / "outside.txt").exists()


async def test_absolute_paths_mean_the_root(root: Path) -> None:
    secret = root.parent / "secret.txt"
    secret.write_text("secret")
    reg = _registry(root)
    result = await _run(reg, f"!!file.read path:'{secret}'")
    assert result.error is not None
    assert "is not a file" in result.error.message
    result = await _run(reg, f"!!file.write path:'{secret}' content:x")
    assert result.ok
    assert secret.read_text() == "secret"
    assert (root / str(secret).lstrip("/")).read_text() == "x"


async def test_symlinks_pointing_outside_are_refused(root: Path) -> None:
    outside = root.parent / "outside"
    outside.mkdir()
    (outside / "f.txt").write_text("private")
    (root / "link").symlink_to(outside)
    (root / "flink.txt").symlink_to(outside / "f.txt")
    reg = _registry(root)
    for script in (
        "!!file.read path:link/f.txt",
        "!!file.read path:flink.txt",
        "!!file.write path:flink.txt content:x",
        "!!file.write path:link/new.txt content:x",
        "!!file.list path:link",
        "!!file.delete path:flink.txt",
    ):
        result = await _run(reg, script)
        assert result.error is not None, script
        assert "outside the WebDAV root" in result.error.message
    assert (outside / "f.txt").read_text() == "private"
    assert sorted(p.name for p in outside.iterdir()) == ["f.txt"]


async def test_symlink_inside_root_is_fine(root: Path) -> None:
    (root / "real").mkdir()
    (root / "real" / "f.txt").write_text("ok")
    (root / "alias").symlink_to(root / "real")
    result = await _run(_registry(root), "!!file.read path:alias/f.txt")
    assert result.results[0].result == "ok"


async def test_file_actions_without_root_fail_clearly() -> None:
    result = await _run(_registry(None), "!!file.read path:x")
    assert result.error is not None
    assert "need a WebDAV root" in result.error.message


async def test_shell_run_returns_output() -> None:
    result = await _run(_registry(None, shell=True), "!!shell.run cmd:'echo hi; echo err >&2'")
    assert result.results[0].result == {"exit_code": 0, "stdout": "hi\n", "stderr": "err\n"}
    result = await _run(_registry(None, shell=True), "!!shell.run cmd:'exit 3'")
    assert result.error is not None
    assert "exit code 3" in result.error.message


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    # A zombie is dead; it only waits for its parent (maybe init) to reap it.
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _group_members(pgid: int) -> list[int]:
    alive = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(stat_file.parent.name))
    return alive


async def test_shell_run_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    # The shell starts a child that ignores SIGTERM: only a group SIGKILL ends it.
    cmd = f"sh -c 'trap \"\" TERM; sleep 60' & echo $$ $! > {pidfile}; wait"
    reg = _registry(None, shell=True)
    ctx = ActionContext()
    task = asyncio.create_task(
        run_playbook(parser.parse(f"!!shell.run cmd:{render_value(cmd)}"), reg, ctx)
    )
    await async_wait_for(
        lambda: pidfile.exists() and len(pidfile.read_text().split()) == 2, 15, "the pid file"
    )
    pids = [int(x) for x in pidfile.read_text().split()]
    assert not any(_gone(pid) for pid in pids)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await async_wait_for(lambda: all(_gone(pid) for pid in pids), 15, f"{pids} to end")
    # Nothing of the command's process group is left running, grandchildren included.
    await async_wait_for(lambda: not _group_members(pids[0]), 15, "the process group to end")
    assert ctx.cancelled.is_set()
