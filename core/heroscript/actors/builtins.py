"""The built-in actors: ``core``, ``fake`` (for tests and demos) and ``file``."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from core.heroscript.context import ActionContext
from core.heroscript.errors import ActionFailed
from core.heroscript.inline import inline
from core.heroscript.settings import ActorsSettings

MAX_FAKE_STEPS = 1_000_000


class CoreActor:
    """Actions every playbook can use."""

    @inline
    def echo(self, ctx: ActionContext, *args: str, message: str = "") -> str:
        """Write a message to the job log and return it.

        Args:
            ctx: the run's context.
            *args: words to echo when no message is given.
            message: the text to echo.
        """
        text = message or " ".join(args)
        ctx.log(text)
        return text


class FakeActor:
    """Actions that succeed, fail or wait on demand, for tests and demos."""

    @inline
    def return_success(self, message: str = "ok") -> str:
        """Succeed with ``message`` as the result."""
        return message

    @inline
    def return_error(self, message: str = "fake error") -> None:
        """Fail with ``message``."""
        raise ActionFailed(message)

    async def sleep(self, seconds: float) -> float:
        """Wait ``seconds`` on the event loop (cancellable) and return them."""
        await asyncio.sleep(seconds)
        return seconds

    async def progress(self, ctx: ActionContext, steps: int = 10, seconds: float = 0.0) -> int:
        """Report progress over ``steps`` steps, ``seconds`` apart, and return the steps.

        Each step reports ``step/steps`` with the message "step N of M".
        """
        if not 1 <= steps <= MAX_FAKE_STEPS:
            raise ActionFailed(f"steps must be from 1 to {MAX_FAKE_STEPS}, got {steps}")
        for step in range(1, steps + 1):
            # Even with no pause, yield to the loop: a long run must not hold it.
            await asyncio.sleep(seconds)
            ctx.progress(step / steps, f"step {step} of {steps}")
        return steps


class FileActor:
    """Read and write files under the WebDAV root; no path may leave it.

    A leading ``/`` means the WebDAV root, as in a WebDAV URL. Symlinks are
    followed only when they stay inside the root.
    """

    def __init__(self, settings: ActorsSettings) -> None:
        self._root = settings.files_root

    def _resolve(self, path: str) -> Path:
        if self._root is None:
            raise ActionFailed("file actions need a WebDAV root (files_root is not set)")
        root = self._root.resolve()
        relative = path.replace("\\", "/").lstrip("/")
        target = (root / relative).resolve()
        if target != root and not target.is_relative_to(root):
            raise ActionFailed(f"path '{path}' is outside the WebDAV root")
        return target

    def write(self, path: str, content: str = "", append: bool = False) -> dict[str, Any]:
        """Write ``content`` to ``path`` (creating folders), or append to it."""
        target = self._resolve(path)
        if target.is_dir():
            raise ActionFailed(f"'{path}' is a folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        # O_NOFOLLOW: a symlink swapped in after the check above is refused, not followed.
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if append else os.O_TRUNC)
        data = content.encode()
        fd = os.open(target, flags, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return {"path": path, "bytes": len(data)}

    def read(self, path: str) -> str:
        """Return the text of ``path``."""
        target = self._resolve(path)
        if not target.is_file():
            raise ActionFailed(f"'{path}' is not a file")
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            return handle.read().decode("utf-8", errors="replace")

    def list(self, path: str = "/", recursive: bool = False) -> list[str]:
        """List the entries of a folder (folders end with ``/``), relative to it."""
        folder = self._resolve(path)
        if not folder.is_dir():
            raise ActionFailed(f"'{path}' is not a folder")
        found = folder.rglob("*") if recursive else folder.iterdir()
        names = [p.relative_to(folder).as_posix() + ("/" if p.is_dir() else "") for p in found]
        return sorted(names)

    def delete(self, path: str) -> bool:
        """Delete a file or an empty folder; return whether something was deleted."""
        target = self._resolve(path)
        if target == self._resolve("/"):
            raise ActionFailed("the WebDAV root itself cannot be deleted")
        if target.is_dir():
            target.rmdir()
            return True
        if target.exists():
            target.unlink()
            return True
        return False


def builtin_actors(settings: ActorsSettings) -> dict[str, type]:
    """Return the built-in actor classes by name; ``shell`` only when enabled."""
    actors: dict[str, type] = {"core": CoreActor, "fake": FakeActor, "file": FileActor}
    if settings.enable_shell:
        from core.heroscript.actors.shell import ShellActor

        actors["shell"] = ShellActor
    return actors
