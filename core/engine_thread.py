"""An engine on a thread and event loop of its own, driven from another loop (the app's)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from core.api import EngineAPI
from core.api.other_loop import api_from_other_loop, on_loop
from core.engine import Engine
from core.memory import limit_malloc_arenas

T = TypeVar("T")
log = logging.getLogger(__name__)
# How long `close` waits for the engine's loop to finish its last tasks.
CLOSE_SECONDS = 10.0


class EngineThread:
    """Runs an `Engine` on its own loop and thread; the caller's loop only awaits it.

    The terminal app's loop draws and answers keys. Sharing it with the engine meant
    every persisted batch, index write and event fan-out held up the next frame, tens of
    milliseconds under load. On a thread of its own, the engine's work yields the
    interpreter to the app's thread at least every switch interval (5 ms by default).
    """

    def __init__(self, name: str = "heroagent-engine") -> None:
        limit_malloc_arenas()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            # What is still scheduled (a stop cut short) ends here, as asyncio.run would.
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
            self.loop.close()

    async def call(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` on the engine's loop; cancelling the caller cancels it there."""
        return await on_loop(self.loop, work)

    async def build(self, make: Callable[[], Engine]) -> tuple[Engine, EngineAPI]:
        """The engine `make` builds on the engine's loop, and its API for this loop."""

        async def made() -> Engine:
            return make()

        engine = await self.call(made())
        return engine, api_from_other_loop(engine.api, self.loop)

    async def close(self) -> None:
        """Stop the engine's loop (after the engine stopped) and wait for its thread.

        At most CLOSE_SECONDS: a task that ignores its cancel, or a thread of the loop's
        executor that never returns (a sync action stuck in a system call), would keep
        the loop's last step waiting for good. The thread is a daemon: it ends with the
        process.
        """
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self._thread.join, CLOSE_SECONDS)
        if self._thread.is_alive():
            log.warning(
                "the engine's loop did not finish within %s s; leaving it to the exit",
                CLOSE_SECONDS,
            )
