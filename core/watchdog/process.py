"""The engine's job slots in a child process, so jobs' CPU never shares the app's loop.

The parent side is `ChildWatchDogService`; the child is `python -m core.watchdog.process`,
which runs the same `WatchDog` that `heroagent worker` runs. They talk over
pipes, one line per message:

- parent → child, stdin: the pickled config first (8-byte length, then the bytes), then
  `drain <seconds> <hint>` lines. End of file (the parent stopped, or died) stops the child
  at once: its running jobs go back to their queues.
- child → parent, stdout: `ready <worker id>`, `stats <busy> <completed> <abandoned>
  <restarts>` when those change, `say <line>` while draining, `drained <jobs left>`.
- child → parent, stderr: its log records, `<LEVEL> <logger>: <message>`, logged again
  by the parent.

The child is spawned like the Redis server: Linux sends it SIGTERM when the parent dies
(PR_SET_PDEATHSIG), so no orphan outlives an app killed with SIGKILL; it then hands its
running jobs back and exits within `CHILD_EXIT_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import struct
import sys
import threading
from collections.abc import Callable
from typing import Any

from core.config import Config
from core.events.bus import EventBus
from core.heroscript.tools import ScriptTools
from core.redis_server.process import die_with_parent
from core.redis_server.service import RedisService
from core.services import ServiceStartError
from core.watchdog.pool import WatchDog
from core.watchdog.service import (
    SlotsService,
    build_processors,
    build_registry,
    slots_detail,
    watchdog_settings,
)

log = logging.getLogger(__name__)

# The config is a few kB; anything far bigger on the pipe is not ours.
MAX_CONFIG_BYTES = 16 * 2**20
# The child imports the actors and connects; on a loaded machine that takes seconds.
READY_SECONDS = 60.0
# After the stop is asked, the child's loop gets this long before it exits regardless
# (a sync action's thread cannot be stopped and must not keep the process alive).
CHILD_EXIT_SECONDS = 5.0
# How long a stop waits for the child after closing its stdin, before SIGKILL.
STOP_WAIT_SECONDS = 8.0
# How often the child looks whether its slot counts changed.
STATS_SECONDS = 0.5
# A child that died on its own comes back after this long, doubling up to the cap.
RESPAWN_FIRST_SECONDS = 0.5
RESPAWN_MAX_SECONDS = 10.0
_LENGTH = struct.Struct(">Q")


class ChildWatchDogService(SlotsService):
    """Runs `jobs.worker_count` job slots in a supervised child process.

    The child is started with the service, started again if it dies on its own, and
    stopped with it; it reports like any `heroagent worker` (through Redis), so the
    history, the relay and cancels work unchanged.
    """

    name = "watchdog"
    stop_timeout = STOP_WAIT_SECONDS + 4.0

    def __init__(
        self, config: Config, bus: EventBus, redis: RedisService, scripts: ScriptTools
    ) -> None:
        super().__init__(config, bus, redis, scripts)
        self._proc: asyncio.subprocess.Process | None = None
        self._worker_id = ""
        self._stats = (0, 0, 0, 0)
        self._stopping = False
        self._ready: asyncio.Future[str] | None = None
        self._drained: asyncio.Future[int] | None = None
        self._say: Callable[[str], None] = log.info
        self._readers: list[asyncio.Task[None]] = []
        self.respawns = 0

    def address(self) -> str:
        """The worker id the child registered in Redis."""
        return self._worker_id

    def pid(self) -> int | None:
        """The child's pid while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    @property
    def busy_slots(self) -> int:
        """Slots the child reports busy."""
        return self._stats[0]

    @property
    def abandoned_slots(self) -> int:
        """Slots the child reports held by abandoned threads."""
        return self._stats[2]

    def detail(self) -> str:
        """Slots, jobs completed, and the child's pid."""
        if self._proc is None:
            return ""
        _busy, completed, abandoned, restarts = self._stats
        text = slots_detail(self.config.jobs.worker_count, completed, abandoned, restarts)
        text += f", in process {self._proc.pid}"
        if self.respawns:
            text += f", {self.respawns} respawns"
        return text

    async def _start(self) -> None:
        self._stopping = False
        await self._spawn()
        self.supervise("child", self._watch)

    async def _spawn(self) -> None:
        """Start the child, hand it the config, wait for its `ready`."""
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "core.watchdog.process",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            # SIGTERM when we die (it hands its jobs back then), in its own process group.
            preexec_fn=die_with_parent(os.getpid()),
        )
        self._proc = proc
        assert proc.stdin is not None
        assert proc.stdout is not None
        assert proc.stderr is not None
        self._readers = [
            asyncio.create_task(self._read_replies(proc.stdout), name="watchdog-child-out"),
            asyncio.create_task(self._read_logs(proc.stderr), name="watchdog-child-err"),
        ]
        data = pickle.dumps(self.config)
        try:
            proc.stdin.write(_LENGTH.pack(len(data)) + data)
            await proc.stdin.drain()
            async with asyncio.timeout(READY_SECONDS):
                await _until_either(self._ready, proc)
        except (TimeoutError, OSError) as exc:
            await self._end_child()
            raise ServiceStartError(f"the job slots' process did not start: {exc}") from None
        if not self._ready.done():
            await self._end_child()
            raise ServiceStartError(
                f"the job slots' process exited with {proc.returncode} before it was ready"
            )
        self._worker_id = self._ready.result()

    async def _watch(self) -> None:
        """Start the child again when it dies on its own."""
        pause = RESPAWN_FIRST_SECONDS
        while not self._stopping:
            proc = self._proc
            if proc is not None:
                await proc.wait()
                if self._stopping:
                    return
                self.emit_log(
                    logging.ERROR,
                    f"the job slots' process {proc.pid} exited ({proc.returncode}); "
                    f"starting it again in {pause:g} s",
                )
                await self._end_child()
            await asyncio.sleep(pause)
            pause = min(pause * 2, RESPAWN_MAX_SECONDS)
            try:
                await self._spawn()
            except ServiceStartError as exc:
                self.emit_log(logging.ERROR, str(exc))
                continue
            self.respawns += 1
            pause = RESPAWN_FIRST_SECONDS

    async def _read_replies(self, stdout: asyncio.StreamReader) -> None:
        while line := await stdout.readline():
            verb, _, rest = line.decode(errors="replace").rstrip("\n").partition(" ")
            if verb == "ready" and self._ready is not None and not self._ready.done():
                self._ready.set_result(rest)
            elif verb == "stats":
                with contextlib.suppress(ValueError):
                    busy, completed, abandoned, restarts = (int(n) for n in rest.split())
                    self._stats = (busy, completed, abandoned, restarts)
            elif verb == "say":
                self._say(rest)
            elif verb == "drained" and self._drained is not None and not self._drained.done():
                with contextlib.suppress(ValueError):
                    self._drained.set_result(int(rest))

    async def _read_logs(self, stderr: asyncio.StreamReader) -> None:
        while line := await stderr.readline():
            text = line.decode(errors="replace").rstrip("\n")
            level_name, _, message = text.partition(" ")
            level = logging.getLevelNamesMapping().get(level_name)
            if level is None:
                level, message = logging.WARNING, text
            log.log(level, "slots process: %s", message)

    async def drain(self, hint: str, say: Callable[[str], None]) -> int:
        """Ask the child to take no more jobs and let the running ones finish."""
        proc = self._proc
        if proc is None or proc.returncode is not None or proc.stdin is None:
            return 0
        self._say = say
        self._drained = asyncio.get_running_loop().create_future()
        seconds = self.config.jobs.drain_seconds
        proc.stdin.write(f"drain {seconds!r} {hint}\n".encode())
        try:
            await proc.stdin.drain()
            await _until_either(self._drained, proc)
        except OSError:
            return 0
        return self._drained.result() if self._drained.done() else 0

    def cancel(self, job_id: int) -> bool:
        """The child hears cancels on Redis, like any worker: nothing to do here."""
        return False

    async def _stop(self) -> None:
        self._stopping = True
        await self.stop_supervised()
        await self._end_child()

    async def _end_child(self) -> None:
        """Close the child's stdin (it stops at once), wait, then kill it if it stays."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                async with asyncio.timeout(STOP_WAIT_SECONDS):
                    await proc.wait()
            except TimeoutError:
                log.error("the job slots' process %d did not stop; killing it", proc.pid)
            finally:
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
        readers, self._readers = self._readers, []
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        self._stats = (0, self._stats[1], 0, self._stats[3])


async def _until_either(reply: asyncio.Future[Any], proc: asyncio.subprocess.Process) -> None:
    """Wait for the child's reply, or for the child to exit without one."""
    exited = asyncio.ensure_future(proc.wait())
    try:
        await asyncio.wait([reply, exited], return_when=asyncio.FIRST_COMPLETED)
    finally:
        exited.cancel()


# -- the child -------------------------------------------------------------------------------


def _read_exact(fd: int, size: int) -> bytes:
    """Exactly `size` bytes from `fd`, unbuffered: the loop reads the rest of the pipe."""
    chunks: list[bytes] = []
    left = size
    while left:
        chunk = os.read(fd, min(left, 2**20))
        if not chunk:
            raise SystemExit("config on stdin cut short")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_config(fd: int) -> Config:
    (size,) = _LENGTH.unpack(_read_exact(fd, _LENGTH.size))
    if size > MAX_CONFIG_BYTES:
        raise SystemExit(f"config on stdin is {size} bytes, more than {MAX_CONFIG_BYTES}")
    data = _read_exact(fd, size)
    # Pickle from our own parent over a private pipe: the same trust as our argv.
    config = pickle.loads(data)
    if not isinstance(config, Config):
        raise SystemExit("stdin did not hold a config")
    return config


def _tell(line: str) -> None:
    sys.stdout.write(line.replace("\n", " ") + "\n")
    sys.stdout.flush()


async def _serve(config: Config) -> None:
    """Run the slots until stdin closes or SIGTERM; then hand back what still runs."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(commands), os.fdopen(0, "rb", buffering=0)
    )
    redis = RedisService(config, EventBus()).loop_client()
    registry = await asyncio.to_thread(build_registry, config)
    dog = WatchDog(redis, build_processors(config, registry), watchdog_settings(config))
    await dog.start()
    try:
        _tell(f"ready {dog.worker_id}")
        stats = asyncio.create_task(_report_stats(dog))
        reading = asyncio.create_task(_obey(commands, dog, config))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([reading, stopping], return_when=asyncio.FIRST_COMPLETED)
        for task in (stats, reading, stopping):
            task.cancel()
    finally:
        # Whatever happens now, the process ends soon: a thread may hold the loop's exit.
        timer = threading.Timer(CHILD_EXIT_SECONDS, os._exit, (1,))
        timer.daemon = True
        timer.start()
        try:
            await dog.stop()
        finally:
            await redis.aclose()


async def _obey(commands: asyncio.StreamReader, dog: WatchDog, config: Config) -> None:
    """Follow the parent's lines until its end of file."""
    while line := await commands.readline():
        verb, _, rest = line.decode(errors="replace").rstrip("\n").partition(" ")
        if verb == "drain":
            seconds, _, hint = rest.partition(" ")
            try:
                wait = float(seconds)
            except ValueError:
                wait = config.jobs.drain_seconds
            left = await dog.drain(wait, hint=hint, say=lambda text: _tell(f"say {text}"))
            _tell(f"drained {left}")


async def _report_stats(dog: WatchDog) -> None:
    last = None
    while True:
        now = (dog.busy, dog.completed, dog.abandoned, dog.restarts)
        if now != last:
            _tell("stats " + " ".join(str(n) for n in now))
            last = now
        await asyncio.sleep(STATS_SECONDS)


def main() -> int:
    """The child's entry point: `python -m core.watchdog.process`, config on stdin."""
    # The parent stops us through stdin; a Ctrl-C meant for it must not cut our stop short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    config = _read_config(0)
    logging.basicConfig(
        level=config.log_level.upper(),
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(_serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
