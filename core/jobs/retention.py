"""Retention: a sweep that purges ended jobs past `jobs.retention` (an age or a count)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from core.config import RetentionConfig, parse_retention
from core.events import JobFilter
from core.jobs.manager import JobManager
from core.jobs.purge import purge

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rule:
    """Keep jobs of one status younger than `age` seconds, or only the newest `keep`."""

    status: str
    age: float | None = None
    keep: int = 0


def rules(config: RetentionConfig) -> list[Rule]:
    """The rules the config sets (none when both statuses keep everything)."""
    found = []
    for status, text in (("done", config.done), ("error", config.error)):
        parsed = parse_retention(text)
        if parsed is None:
            continue
        kind, value = parsed
        found.append(Rule(status, age=value) if kind == "age" else Rule(status, keep=int(value)))
    return found


class RetentionSweep:
    """Purges what the rules no longer keep, once at start and then every `interval` s.

    Each sweep purges in batches (see `core.jobs.purge`), so the engine keeps answering
    while a large backlog goes; a crash is the supervisor's to restart.
    """

    def __init__(
        self,
        manager: Callable[[], JobManager | None],
        config: RetentionConfig,
        emit: Callable[[int, str], None],
    ) -> None:
        self._manager = manager
        self.rules = rules(config)
        self.interval = config.interval
        self._emit = emit
        self.sweeps = 0

    async def run(self) -> None:
        """Sweep, then wait the interval; forever."""
        while True:
            await self.sweep()
            await asyncio.sleep(self.interval)

    async def sweep(self) -> int:
        """One pass over every rule; how many jobs went."""
        manager = self._manager()
        if manager is None:
            return 0
        total = 0
        for rule in self.rules:
            before = time.time() - rule.age if rule.age is not None else None
            count = await purge(
                manager, JobFilter(status=rule.status), ended_before=before, keep=rule.keep
            )
            if count:
                kept = (
                    f"older than {rule.age:g} s"
                    if rule.age is not None
                    else f"beyond the newest {rule.keep}"
                )
                self._emit(logging.INFO, f"retention purged {count} {rule.status} jobs {kept}")
            total += count
        self.sweeps += 1
        return total
